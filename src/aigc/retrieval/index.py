"""A search index of question-answer pairs: BM25 (Robertson and Zaragoza 2009) over the pairs' questions, by the
bm25s library (Lucene's scoring: k1 = 1.5, b = 0.75), the pairs kept beside it.

A directory holds it: `index.json` (what it indexes and how), `pairs.jsonl` (id, question, answer, intent per
line) and `bm25/` (bm25s's own arrays and vocabulary, saved without pickle). Loading reads the arrays as saved:
the corpus is not tokenised again. Words are bm25s's: lower-cased runs of two or more word characters, English
stop words left out; a word the index has never seen scores nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from aigc.core.errors import UserError
from aigc.data.support import Pair

FORMAT = 1  # of index.json: a directory of another format is refused, not misread
STOPWORDS = "en"


@dataclass(frozen=True)
class Hit:
    pair: Pair
    score: float  # BM25's
    rank: int  # 1 for the best


def bm25s():
    try:
        import bm25s
    except ImportError:
        raise UserError("the search index needs bm25s; pip install 'aigc[assistant]'") from None
    return bm25s


def words(texts: list[str]) -> list[list[str]]:
    return bm25s().tokenize(texts, stopwords=STOPWORDS, return_ids=False, show_progress=False)


class Index:
    def __init__(self, pairs: list[Pair], bm25, source: str):
        self.pairs, self.bm25, self.source = pairs, bm25, source

    @classmethod
    def build(cls, pairs: list[Pair], source: str) -> Index:
        """The index of `pairs` (from `source`: a data set and split, as the index records it)."""
        if not pairs:
            raise UserError(f"{source}: no pairs to index")
        bm25 = bm25s().BM25()
        bm25.index(bm25s().tokenize([pair.question for pair in pairs], stopwords=STOPWORDS, show_progress=False),
                   show_progress=False)  # fmt: skip
        return cls(pairs, bm25, source)

    def save(self, out: Path) -> None:
        """The index as a directory (replacing the files of one there)."""
        try:
            out.mkdir(parents=True, exist_ok=True)
            self.bm25.save(out / "bm25", show_progress=False)
            with open(out / "pairs.jsonl", "w", encoding="utf-8") as f:
                f.writelines(json.dumps(asdict(pair), ensure_ascii=False) + "\n" for pair in self.pairs)
            manifest = {"format": FORMAT, "kind": "bm25", "source": self.source, "pairs": len(self.pairs)}
            (out / "index.json").write_text(json.dumps(manifest, indent=2) + "\n")
        except OSError as error:
            raise UserError(f"cannot write the index to {out} ({error.strerror}); choose a writable --out") from None

    @classmethod
    def load(cls, path: Path) -> Index:
        """The index in directory `path`; UserError when it is not one, or not whole."""
        try:
            manifest = json.loads((path / "index.json").read_text())
        except (OSError, ValueError):
            raise UserError(
                f"{path} is not a search index (no readable index.json); make one with aigc index build"
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise UserError(f"{path}/index.json is not of format {FORMAT}; build the index again with this aigc")
        try:
            lines = (path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
            pairs = [Pair(**json.loads(line)) for line in lines]
            bm25 = bm25s().BM25.load(path / "bm25", show_progress=False)
        except (OSError, ValueError, TypeError) as error:
            raise UserError(f"{path}: the index is incomplete or damaged ({error}); build it again") from None
        if len(pairs) != manifest.get("pairs") or len(pairs) != bm25.scores["num_docs"]:
            raise UserError(f"{path}: its pairs and its BM25 arrays disagree; build the index again")
        return cls(pairs, bm25, manifest.get("source", ""))

    def query(self, texts: list[str], k: int) -> list[list[Hit]]:
        """The `k` pairs whose questions best match each text (fewer when the index holds fewer)."""
        k = min(k, len(self.pairs))
        found, scores = self.bm25.retrieve(words(texts), k=k, show_progress=False)
        return [
            [
                Hit(self.pairs[int(i)], float(score), rank)
                for rank, (i, score) in enumerate(zip(row, row_scores, strict=True), 1)
            ]
            for row, row_scores in zip(found, scores, strict=True)
        ]
