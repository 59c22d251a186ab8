"""Recommendation on MovieLens ml-latest-small (610 users, 9,742 movies, 48,580 likes: ratings of 4 or more), on
this machine. Leave-last-out, with 10% of the movies liked 5+ times (196) held out of training for cold start
(data/ratings.py). Trained here, each for the same wall-clock budget:

- aigc's recommender (SASRec on aigc's transformer) with item vectors from ids only, from text only, and from
  both; the text vectors come from a byte-level BPE language model pre-trained on the ten Gutenberg books and
  then fine-tuned on the movies' text (`aigc train lm --data movielens --init`);

and beside them, fitted here, tuned on the validation targets (a small grid; the configuration with the best
validation NDCG@10 scored on test, reading the validation like as aigc's models do), the baselines:
popularity (aigc's), item-kNN (cosine), ALS and BPR matrix factorisation (all three from `implicit`), and two
text-only rankings that need no training on likes: each item scored by the cosine of its text vector with the
mean of the history's (the same language-model vectors the recommender reads), and the same with TF-IDF vectors
of the movies' text (scikit-learn). An id-based baseline cannot score an item no training history holds: such
items score -inf (a miss), as in aigc's own id model.

Every model is scored by evaluation/ranking.py on the same cases: full-catalogue HR/NDCG@10 on the test targets,
the sampled protocol (100 negatives), and cold start (HR/NDCG@10 and AUC). aigc's models are scored at the
checkpoint their validation loss chose (best.safetensors). Recommendations/s are measured in process over the
608 test histories: all at once without reasons, and one at a time with three reasons each (leave-one-out)."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from harness import RUNS, monitored

PRETRAIN = ["--data", "gutenberg", "--tokenizer", "bpe", "--vocab-size", "2048", "--context", 128, "--batch", 16]
REPRESENTATIONS = ("id", "text", "id+text")
GRIDS = {  # the baselines' settings tried on validation
    "item-knn": [{"K": k} for k in (20, 50, 100, 200)],
    "als": [
        {"factors": f, "regularization": r, "alpha": a, "iterations": 15, "random_state": 0}
        for f, r, a in itertools.product((32, 64, 128), (0.01, 0.1), (1.0, 10.0))
    ],
    "bpr": [
        {"factors": f, "learning_rate": lr, "regularization": 0.01, "iterations": 100, "random_state": 0}
        for f, lr in itertools.product((32, 64, 128), (0.01, 0.05))
    ],
}
EXAMPLE_USERS = ("1", "414")


def trained(*args) -> dict:
    """Run an `aigc train` command; its peak memory and what it saw."""
    _, memory = monitored("train", *args, "--overwrite", "--no-progress")
    out = Path(args[args.index("--out") + 1])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    counted = [key for key in ("tokens", "histories") if any(key in r for r in rows)]
    seen = {key: max(r[key] for r in rows if key in r) for key in counted}
    seconds = max((r["train_seconds"] for r in rows if "train_seconds" in r), default=None)
    return {**seen, **({"train_seconds": seconds} if seconds else {}), **memory}


def build(data_dir: str, pretrain_minutes: float, text_minutes: float, minutes: float) -> dict:
    """Train the text model and the three recommenders under runs/bench-recommender/."""
    root, data = RUNS / "bench-recommender", ["--data-dir", data_dir]
    steps = {"pretrain": trained("lm", *PRETRAIN, *data, "--minutes", pretrain_minutes, "--out", root / "books")}
    steps["text model"] = trained("lm", "--data", "movielens", *data, "--init", root / "books",
                                  "--minutes", text_minutes, "--out", root / "movie-text")  # fmt: skip
    for representation in REPRESENTATIONS:
        text = [] if representation == "id" else ["--text-model", root / "movie-text"]
        flags = [*data, *text, "--representation", representation, "--minutes", minutes]
        steps[representation] = trained("recommender", "--data", "movielens", *flags, "--out", root / representation)
    return steps


def user_items(ratings, histories: list[tuple[int, ...]]):
    """The users x items matrix (CSR, float32) of `histories` (one per user, in user order)."""
    from scipy.sparse import csr_matrix

    rows = [user for user, history in enumerate(histories) for _ in history]
    columns = [item for history in histories for item in history]
    shape = (len(histories), len(ratings.catalogue) + 1)
    return csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, columns)), shape=shape)


class Baseline:
    """An `implicit` model fitted on the training likes, scoring each user from a matrix of what it may read:
    item-kNN and ALS read the user's row (ALS solves the user's factors from it, as aigc's model reads the
    validation like at test time), BPR keeps the user factors it learnt."""

    def __init__(self, name: str, settings: dict, training):
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.cpu.bpr import BayesianPersonalizedRanking
        from implicit.nearest_neighbours import CosineRecommender
        from threadpoolctl import threadpool_limits

        kinds = {"item-knn": CosineRecommender, "als": AlternatingLeastSquares, "bpr": BayesianPersonalizedRanking}
        self.name, self.model = name, kinds[name](**settings)
        with threadpool_limits(1, "blas"):  # implicit's own threads do the work; OpenBLAS's would fight them
            self.model.fit(training, show_progress=False)
        self.trained = torch.from_numpy(np.asarray(training.sum(0)).ravel() > 0)

    def scores(self, read) -> torch.Tensor:
        """Every user's score of every item [users, items + 1], from the users x items matrix `read`."""
        if self.name == "item-knn":
            scores = np.asarray((read @ self.model.similarity).todense())
        else:
            users = self.model.user_factors
            if self.name == "als":
                users = self.model.recalculate_user(np.arange(read.shape[0]), read)
            scores = np.asarray(users) @ np.asarray(self.model.item_factors).T
        return torch.from_numpy(scores).float().masked_fill(~self.trained, float("-inf"))

    def scorer(self, read):
        """A Scorer: each case's user's row of `scores(read)`, its history at -inf."""
        table = self.scores(read)

        def scorer(cases) -> torch.Tensor:
            chosen = table[list(cases.users)].clone()
            for row, history in enumerate(cases.histories):
                chosen[row, list(history)] = float("-inf")
            return chosen

        return scorer


def tuned_baseline(name: str, ratings) -> tuple[dict, object]:
    """(the setting with the best validation NDCG@10 and every setting's, the test Scorer of the model with it).
    Each model fits the training likes once; validation reads the training rows, test the rows with the
    validation like added."""
    from aigc.evaluation.ranking import protocol_scores

    training = user_items(ratings, ratings.histories(held_out=2))
    validation = {"validation": ratings.cases("validation")}
    tried, fitted = [], []
    for settings in GRIDS[name]:
        started = time.perf_counter()
        baseline = Baseline(name, settings, training)
        seconds = time.perf_counter() - started
        scored = protocol_scores(baseline.scorer(training), ratings, validation, {"": "validation"})
        tried.append({"settings": settings, "val_ndcg@10": scored["ndcg@10"], "fit_seconds": seconds})
        fitted.append(baseline)
    best = max(range(len(tried)), key=lambda i: tried[i]["val_ndcg@10"])
    test_rows = user_items(ratings, ratings.histories(held_out=1))
    return {"chosen": tried[best]["settings"], "tried": tried}, fitted[best].scorer(test_rows)


def text_scorer(vectors):
    """Each item scored by the dot product of its vector (rows of `vectors` [items + 1, width], unit length;
    numpy or scipy sparse) with the mean of the history's vectors: their cosine, up to the profile's length."""
    from scipy.sparse import csr_matrix, issparse

    def scorer(cases) -> torch.Tensor:
        rows = [case for case, history in enumerate(cases.histories) for _ in history]
        columns = [item for history in cases.histories for item in history]
        weights = [1 / len(history) for history in cases.histories for _ in history]
        mean = csr_matrix((weights, (rows, columns)), shape=(len(cases), vectors.shape[0]))
        scores = (mean @ vectors) @ vectors.T
        scores = torch.from_numpy(np.asarray(scores.todense() if issparse(scores) else scores)).float()
        scores[:, 0] = float("-inf")
        for row, history in enumerate(cases.histories):
            scores[row, list(history)] = float("-inf")
        return scores

    return scorer


def tfidf_vectors(ratings):
    """The TF-IDF vectors of the items' text (scikit-learn's, unit rows; sparse), row 0 for the padding."""
    from scipy.sparse import csr_matrix, vstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer(sublinear_tf=True).fit_transform(ratings.catalogue.texts)
    return vstack([csr_matrix((1, matrix.shape[1])), matrix]).tocsr()


def served(family, model, ratings) -> dict:
    """Recommendations/s over the test histories: all at once without reasons, and one at a time with three."""
    from aigc.families.recommender.config import RecommendSampleConfig

    histories = list(ratings.cases("test").histories)
    started = time.perf_counter()
    family.recommend(model, histories, RecommendSampleConfig(k=10, explain=0))
    batched = len(histories) / (time.perf_counter() - started)
    started = time.perf_counter()
    for history in histories[:100]:
        family.recommend(model, [history], RecommendSampleConfig(k=10, explain=3))
    return {"batched_per_s": batched, "one_at_a_time_with_reasons_per_s": 100 / (time.perf_counter() - started)}


def examples(family, model, ratings) -> list[dict]:
    """Each example user's five newest likes and top five with reasons; then the cold items the model ranks
    highest for them."""
    from aigc.families.recommender.config import RecommendSampleConfig

    shown, test = [], ratings.cases("test")
    for user in EXAMPLE_USERS:
        history = list(test.histories[test.users.index(ratings.users.index(user))])
        (items,) = family.recommend(model, [history], RecommendSampleConfig(k=5, explain=2))
        (cold,) = family.recommend(model, [history], RecommendSampleConfig(k=200, explain=0))
        newest = [ratings.catalogue.titles[i - 1] for i in history[-5:]]
        top_cold = [item for item in cold if item["cold"]][:3]
        shown.append({"user": user, "newest_likes": newest, "top": items, "top_cold": top_cold})
    return shown


def evaluate(data_dir: str) -> dict:
    from aigc.data.ratings import RatingsConfig, read_ratings
    from aigc.evaluation.ranking import popularity_scorer, protocol_scores
    from aigc.families.registry import family_of, load_model

    ratings = read_ratings(RatingsConfig(data_dir=data_dir))
    cases = {split: ratings.cases(split) for split in ("test", "cold")}
    root, report, models = RUNS / "bench-recommender", {}, {}
    for representation in REPRESENTATIONS:
        model, config = load_model(root / representation / "checkpoints" / "best.safetensors")
        family = family_of(config)
        models[representation] = (family, model)
        scorer = lambda c, family=family, model=model: family.scores(model, c.histories)  # noqa: E731
        report[f"aigc {representation}"] = protocol_scores(scorer, ratings, cases)
        report[f"aigc {representation}"]["serving"] = served(family, model, ratings)
    report["popularity"] = protocol_scores(popularity_scorer(ratings), ratings, cases)
    tuning = {}
    for name in GRIDS:
        tuning[name], scorer = tuned_baseline(name, ratings)
        report[name] = protocol_scores(scorer, ratings, cases)
    text_family, text_model = models["id+text"]
    report["text only: LM vectors"] = protocol_scores(text_scorer(text_model.features.cpu().numpy()), ratings, cases)
    report["text only: TF-IDF"] = protocol_scores(text_scorer(tfidf_vectors(ratings)), ratings, cases)
    return {"scores": report, "tuning": tuning, "examples": examples(text_family, text_model, ratings)}


def bench_recommender(pretrain_minutes: float, text_minutes: float, minutes: float, data_dir: str) -> dict:
    started = time.perf_counter()
    steps = build(data_dir, pretrain_minutes, text_minutes, minutes)
    evaluated = evaluate(data_dir)
    budgets = {"pretrain": pretrain_minutes, "text_model": text_minutes, "recommender": minutes}
    anchors = {
        "NeuMF, ML-1M, sampled 100 (He et al. 2017)": {"sampled_hr@10": 0.730, "sampled_ndcg@10": 0.447},
        "SASRec, ML-1M, sampled 100 (Kang & McAuley 2018)": {"sampled_hr@10": 0.8245, "sampled_ndcg@10": 0.5905},
        "LightFM with tags, ML-10M cold start (Kula 2015)": {"cold_auc": 0.707},
        "MF, ML-10M cold start (Kula 2015)": {"cold_auc": 0.500},
    }
    return {
        "minutes": budgets,
        "training": steps,
        **evaluated,
        "anchors": anchors,
        "wall_minutes": (time.perf_counter() - started) / 60,
        "threads": torch.get_num_threads(),
    }
