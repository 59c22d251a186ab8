"""Scoring a recommender by how high it ranks the item each user liked next: hit rate and NDCG at 10.

Three protocols, each on its own cases (data/ratings.py):
- full (`hr@10`, `ndcg@10`): the test target ranked against every item not in the user's history, as Krichene &
  Rendle (2020) recommend - the protocol to compare models by.
- sampled (`sampled_hr@10`, `sampled_ndcg@10`): the test target against 100 items the user never rated, drawn
  at random (as NCF, He et al. 2017, reports); only for comparison with papers that report it: Krichene & Rendle
  show it can order models differently from the full ranking.
- cold (`cold_hr@10`, `cold_ndcg@10`): each like of an item held out of training, ranked against every item not
  in the user's history; a model that cannot score an item it never saw misses every one.
A target's rank counts the candidates scored above it and half of those tied with it (the mean rank under
random tie-breaking); a target the model cannot score (-inf) is a miss. The full and cold protocols also give
the AUC (`auc`, `cold_auc`: the share of candidates the target outranks, as LightFM reports cold start).
`aigc eval` scores a run and, beside it, ranking by popularity (likes in training), the floor any recommender has
to clear.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Callable

import torch

from aigc.core.errors import UserError
from aigc.data.ratings import Cases, Ratings, read_ratings

K = 10
NEGATIVES = 100  # the sampled protocol's
PROTOCOLS = {"": "test", "sampled_": "test", "cold_": "cold"}  # metric prefix -> the cases it ranks
RANKING_METRICS = tuple(f"{prefix}{measure}@{K}" for prefix in PROTOCOLS for measure in ("hr", "ndcg"))

# cases -> scores [len(cases), items + 1]: each case's own history items, and what cannot be ranked, at -inf
Scorer = Callable[[Cases], torch.Tensor]


def ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The rank (1: first) of each row's target among its scores [N, candidates]; inf where it scores -inf."""
    target = scores.gather(1, targets[:, None])
    above = (scores > target).sum(1).double()
    tied = (scores == target).sum(1).double() - 1
    found = above + tied / 2 + 1
    return found.masked_fill(target[:, 0] == float("-inf"), math.inf)


def auc(scores: torch.Tensor, cases: Cases) -> float:
    """The mean over cases of the share of candidates (every item but the padding, the case's history and its
    target) that its target outranks, ties counted half (LightFM's cold-start AUC, Kula 2015); a target the model
    cannot score is a coin flip, 0.5."""
    shares = []
    for row, history, target in zip(scores, cases.histories, cases.targets, strict=True):
        value = row[target]
        if value == float("-inf"):
            shares.append(0.5)
            continue
        candidate = torch.ones_like(row, dtype=torch.bool)
        candidate[[0, target, *history]] = False
        below, tied = int(((row < value) & candidate).sum()), int(((row == value) & candidate).sum())
        shares.append((below + tied / 2) / int(candidate.sum()))
    return sum(shares) / len(shares)


def measures(found: torch.Tensor, k: int = K) -> dict[str, float]:
    """Hit rate (the share of targets ranked in the top k) and NDCG at k (1 / log2(rank + 1) in the top k, else
    0; one relevant item per case, so the ideal gain is 1)."""
    hit = found <= k
    gain = torch.where(hit, 1.0 / torch.log2(found.clamp(max=k) + 1), torch.zeros_like(found))
    return {f"hr@{k}": float(hit.double().mean()), f"ndcg@{k}": float(gain.mean())}


def sampled_candidates(cases: Cases, ratings: Ratings, negatives: int = NEGATIVES, seed: int = 0) -> torch.Tensor:
    """[N, 1 + negatives] item indices: each case's target, then `negatives` distinct items its user never rated,
    drawn uniformly by a generator seeded by `seed` (the same candidates for every model); a user who left fewer
    unrated has them all, the rest of the row the padding item (which every model scores -inf)."""
    generator, items = random.Random(seed), len(ratings.catalogue)
    rows = []
    for user, target in zip(cases.users, cases.targets, strict=True):
        rated = ratings.rated[user]
        if items - len(rated) <= negatives:
            drawn = [item for item in range(1, items + 1) if item not in rated]
        else:
            chosen: set[int] = set()
            while len(chosen) < negatives:
                item = generator.randint(1, items)
                if item not in rated:
                    chosen.add(item)
            drawn = sorted(chosen)
        rows.append([target, *drawn, *[0] * (negatives - len(drawn))])
    return torch.tensor(rows)


def protocol_scores(
    scorer: Scorer, ratings: Ratings, cases: dict[str, Cases], protocols: dict[str, str] = PROTOCOLS
) -> dict:
    """The measures of a scorer by each of `protocols` (metric prefix -> the split in `cases` it ranks; "sampled_"
    draws negatives), with the cases each ranks and how fast the scorer ranks them."""
    report: dict = {}
    scored: dict[str, torch.Tensor] = {}
    for prefix, split in protocols.items():
        chosen = cases[split]
        if not len(chosen):
            continue
        if split not in scored:
            started = time.perf_counter()
            scored[split] = scorer(chosen)
            report[f"{split}_rankings_per_s"] = len(chosen) / (time.perf_counter() - started)
        scores, targets = scored[split], torch.tensor(chosen.targets)
        if prefix == "sampled_":
            candidates = sampled_candidates(chosen, ratings)
            found = ranks(scores.gather(1, candidates), torch.zeros(len(chosen), dtype=torch.long))
        else:
            found = ranks(scores, targets)
            report[f"{prefix}auc"] = auc(scores, chosen)
        report.update({f"{prefix}{name}": value for name, value in measures(found).items()})
        report[f"{prefix}cases"] = len(chosen)
    return report


def popularity_scorer(ratings: Ratings) -> Scorer:
    """Every item scored by its likes in the training histories (an item with none cannot be ranked)."""
    counts = torch.zeros(len(ratings.catalogue) + 1)
    for history in ratings.training_histories():
        counts[list(history)] += 1
    counts = counts.masked_fill(counts == 0, float("-inf"))

    def scorer(cases: Cases) -> torch.Tensor:
        scores = counts.expand(len(cases), -1).clone()
        for row, history in enumerate(cases.histories):
            scores[row, list(history)] = float("-inf")
        return scores

    return scorer


def evaluate_recommender(model, run, config, names: tuple[str, ...]) -> dict:
    """`aigc eval` of a recommender: the run's test and cold cases (of its ratings, or of `--data`) by every
    protocol, the requested measures at the top level, and the popularity ranking's beside them."""
    from aigc.families.registry import family_of

    family = family_of(run)
    data = run.data if config.data is None else dataclasses.replace(run.data, name=config.data)
    ratings = read_ratings(dataclasses.replace(data, data_dir=config.data_dir or run.data.data_dir))
    if ratings.catalogue.ids != run.catalogue:  # the model knows items by their place in its own catalogue
        raise UserError(
            f"--data {data.name}: its movies.csv is not the catalogue the run trained on "
            f"({len(ratings.catalogue)} items against {len(run.catalogue)}); give the run's own data"
        )
    cases = {split: ratings.cases(split) for split in ("test", "cold")}
    scored = protocol_scores(lambda chosen: family.scores(model, chosen.histories), ratings, cases)
    return {
        "data": data.name,
        **{name: scored[name] for name in names if name in scored},
        "protocols": scored,
        "popularity": protocol_scores(popularity_scorer(ratings), ratings, cases),
    }


class RankingInLoopEvaluator:
    """The validation loss (the negative log-probability of each validation target among the items not in its
    history, the held-out items left out as training leaves them out, over the targets the model can score) with
    hit rate and NDCG at 10, on the first `eval_n` users' validation targets. The loss picks the best
    checkpoint."""

    def __init__(self, config):
        from aigc.families.registry import family_of

        self.family = family_of(config)
        ratings = read_ratings(config.data)
        self.cases = ratings.cases("validation").take(config.train.eval_n)
        self.withheld = list(ratings.cold)

    def __call__(self, model, sample) -> dict:
        started = time.perf_counter()
        scores = self.family.scores(model, self.cases.histories)
        scores[:, self.withheld] = float("-inf")  # as training does: the choice must not favour ranking them low
        targets = torch.tensor(self.cases.targets)
        chosen = scores.gather(1, targets[:, None])[:, 0]
        scorable = chosen > float("-inf")
        loss = -(chosen - scores.logsumexp(1))[scorable].mean()
        found = measures(ranks(scores, targets))
        return {
            "val_loss": float(loss),
            **{f"val_{name}": value for name, value in found.items()},
            "eval_seconds": time.perf_counter() - started,
        }
