"""The measures of replies: chrF as sacrebleu computes it, ROUGE-L as rouge-score does, and well-formed
placeholders."""

import pytest

from aigc.core.errors import UserError
from aigc.evaluation.replies import chrf, reply_scores, rouge_l, well_formed


def test_the_measures_are_the_libraries_and_order_replies_by_closeness():
    references = ["Please open {{Order History}} and choose the order.", "We refund within 14 days."]
    same = reply_scores(references, references)
    assert same == {"chrf": pytest.approx(100.0), "rouge_l": pytest.approx(1.0), "well_formed": 1.0}
    close = ["Please open {{Order History}} and pick the order.", "We refund in 14 days."]
    far = ["Hello there.", "The weather is fine."]
    assert chrf(close, references) > chrf(far, references) > 0
    assert 1 > rouge_l(close, references) > rouge_l(far, references)
    assert rouge_l(["the cat sat"], ["the cat sat on the mat"]) == pytest.approx(2 * 1 * 0.5 / 1.5)


@pytest.mark.parametrize(
    "reply, formed",
    [
        ("Open {{Order History}} then {{Live Chat}}.", True),
        ("No placeholder at all.", True),
        ("Open {{Order History} now.", False),
        ("Open {Order History}} now.", False),
        ("Open {{}} now.", False),
        ("Call {{Customer Support Phone Number}} or {{Website URL", False),
    ],
)
def test_a_reply_is_well_formed_when_every_brace_belongs_to_a_placeholder(reply, formed):
    assert well_formed(reply) is formed


def test_replies_and_references_must_pair_up():
    with pytest.raises(UserError, match="1 replies for 2 references"):
        reply_scores(["a"], ["a", "b"])
