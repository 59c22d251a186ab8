"""The ranking measures on hand-computed rows: ranks with ties and unscorable targets, hit rate and NDCG at 10,
AUC over the candidates alone, and the sampled protocol's negatives."""

import math

import pytest
import torch

from aigc.data.ratings import Cases, RatingsConfig, read_ratings
from aigc.evaluation.ranking import auc, measures, ranks, sampled_candidates
from conftest import write_movielens

INF = float("-inf")


def test_a_rank_counts_those_above_and_half_of_those_tied():
    scores = torch.tensor([[INF, 3.0, 1.0, 2.0, 2.0, INF], [INF, 1.0, 1.0, 1.0, 1.0, 1.0], [INF, 1.0, INF, 0, 0, 0]])
    found = ranks(scores, torch.tensor([3, 2, 2]))
    assert found[:2].tolist() == [2.5, 3.0]  # one above and one tied; four tied
    assert found[2] == math.inf  # the model cannot score its target: a miss


def test_hit_rate_and_ndcg_at_k():
    found = torch.tensor([1.0, 3.0, 10.0, 11.0, math.inf], dtype=torch.float64)
    values = measures(found)
    assert values["hr@10"] == pytest.approx(3 / 5)
    assert values["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(11)) / 5)


def test_auc_is_the_share_of_candidates_the_target_outranks():
    scores = torch.tensor([[INF, 3.0, 1.0, 2.0, 2.0, 5.0, 0.0]])
    # history: item 5 (scored high, but not a candidate); target 3: above it item 1, tied item 4, below items 2, 6
    assert auc(scores, Cases((0,), ((5,),), (3,))) == pytest.approx((2 + 0.5) / 4)
    assert auc(torch.tensor([[INF, 1.0, INF]]), Cases((0,), ((1,),), (2,))) == 0.5  # cannot score it: a coin flip


def test_sampled_negatives_are_distinct_unrated_and_the_same_every_time(tmp_path):
    ratings = read_ratings(RatingsConfig(name=f"movielens:{write_movielens(tmp_path / 'ml')}", cold_items=0.0))
    cases = ratings.cases("test")
    few = sampled_candidates(cases, ratings, negatives=5)
    assert few.shape == (len(cases), 6) and torch.equal(few, sampled_candidates(cases, ratings, negatives=5))
    for user, row in zip(cases.users, few.tolist(), strict=True):
        assert row[0] in ratings.liked[user] and len(set(row[1:])) == 5
        assert not set(row[1:]) & ratings.rated[user]
    every = sampled_candidates(cases, ratings, negatives=100)  # 20 unrated of 30: all of them, then the padding
    assert (every[:, 21:] == 0).all() and (every[:, 1:21] > 0).all()
