"""How close replies come to the references an agent wrote: chrF (Popovic 2015, by sacrebleu: character 6-grams,
beta 2, over the whole corpus), ROUGE-L (Lin 2004, by Google's rouge-score: the F-measure of the longest common
subsequence of words, stemmed, averaged over replies), and the share of replies whose placeholders are all well
formed (`{{Order Number}}`: two braces, a name of letters, digits and spaces, two braces; a stray or unclosed
brace makes a reply one a template system cannot fill)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from aigc.core.errors import UserError

PLACEHOLDER = re.compile(r"\{\{[A-Za-z0-9][A-Za-z0-9 ]*\}\}")


def libraries():
    try:
        import sacrebleu
        from rouge_score import rouge_scorer
    except ImportError:
        raise UserError("scoring replies needs sacrebleu and rouge-score; pip install 'aigc[assistant]'") from None
    return sacrebleu, rouge_scorer


def chrf(replies: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (0-100) of `replies` against one reference each."""
    sacrebleu, _ = libraries()
    return sacrebleu.corpus_chrf(list(replies), [list(references)]).score


def rouge_l(replies: Sequence[str], references: Sequence[str]) -> float:
    """The mean ROUGE-L F-measure (0-1) of each reply against its reference."""
    _, rouge_scorer = libraries()
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [
        scorer.score(reference, reply)["rougeL"].fmeasure for reply, reference in zip(replies, references, strict=True)
    ]
    return sum(scores) / max(1, len(scores))


def well_formed(reply: str) -> bool:
    """Whether every brace of `reply` belongs to a well-formed placeholder."""
    rest = PLACEHOLDER.sub("", reply)
    return "{" not in rest and "}" not in rest


def reply_scores(replies: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """chrF, ROUGE-L and the share of well-formed replies, as `aigc` reports them."""
    if not references:
        raise UserError("no references to score replies against; give at least one")
    if len(replies) != len(references):
        raise UserError(f"{len(replies)} replies for {len(references)} references; give one reply for each")
    return {
        "chrf": chrf(replies, references),
        "rouge_l": rouge_l(replies, references),
        "well_formed": sum(map(well_formed, replies)) / len(replies),
    }
