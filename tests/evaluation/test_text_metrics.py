"""Text metrics against their definitions: the sliding-window loss scores every token once, bits per byte,
distinct-n and the longest verbatim copy."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aigc.core.errors import UserError
from aigc.evaluation.text import bits_per_byte, distinct_n, longest_copy, validation_loss
from aigc.models.transformer import Transformer, TransformerConfig


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(TransformerConfig(width=32, layers=1, heads=4, context=8, vocab_size=11)).eval()


def test_non_overlapping_windows_are_plain_cross_entropy(model):
    ids = np.random.default_rng(0).integers(0, 11, 8 * 3 + 1)
    loss, count = validation_loss(model, ids, context=8, stride=8)
    tokens = torch.from_numpy(ids).view(1, -1)
    with torch.no_grad():
        expected = [
            F.cross_entropy(model(tokens[:, s : s + 8])[0], tokens[0, s + 1 : s + 9], reduction="sum")
            for s in (0, 8, 16)
        ]
    assert count == 24 and loss == pytest.approx(float(sum(expected)) / 24, rel=1e-5)


@pytest.mark.parametrize("length, stride", [(30, 3), (30, 8), (9, 4), (5, 2)])
def test_every_token_but_the_first_is_scored_exactly_once(model, length, stride):
    ids = np.arange(length) % 11
    _, count = validation_loss(model, ids, context=8, stride=stride, batch_size=3)
    assert count == length - 1


def test_overlap_gives_later_tokens_more_context(model):
    ids = np.random.default_rng(1).integers(0, 11, 40)
    plain, _ = validation_loss(model, ids, context=8, stride=8)
    overlapped, _ = validation_loss(model, ids, context=8, stride=2)
    assert plain != overlapped  # different histories, different losses
    with pytest.raises(UserError, match="at least 2"):
        validation_loss(model, ids[:1], context=8, stride=8)


def test_bits_per_byte_is_the_text_s_information_over_its_bytes():
    # 1 nat per token, 100 tokens, 100 bytes: 1 / ln 2 bits per byte; with 2 bytes per token half of that
    assert bits_per_byte(1.0, 100, 100) == pytest.approx(1 / math.log(2))
    assert bits_per_byte(1.0, 100, 200) == pytest.approx(0.5 / math.log(2))


def test_distinct_n_counts_unique_word_ngrams():
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # (a b), (b a), (a b)
    assert distinct_n(["a b", "c d"], 2) == 1.0 and distinct_n(["one"], 2) == 0.0


def test_longest_copy_finds_the_longest_verbatim_span():
    training = "To be, or not to be, that is the question"
    assert longest_copy("xx not to be, yy", training) == len(" not to be, ")
    assert longest_copy("zzz", training) == 0 and longest_copy("", training) == 0
    assert longest_copy(training, training) == len(training)
