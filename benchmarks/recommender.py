"""Recommendation on MovieLens ml-latest-small (610 users, 9,742 movies, 48,580 likes: ratings of 4 or more), on
this machine. Leave-last-out, with 10% of the movies liked 5+ times (196) held out of training for cold start
(data/ratings.py). Trained here, each for the same wall-clock budget:

- aigc's recommender (SASRec on aigc's transformer) with item vectors from ids only, from text only, and from
  both; the text vectors come from a byte-level BPE language model pre-trained on the ten Gutenberg books and
  then fine-tuned on the movies' text (`aigc train lm --data movielens --init`);

and beside them, fitted here, tuned on the validation targets (a small grid; the configuration with the best
validation NDCG@10 refitted on the training and validation likes and scored on test), the baselines:
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


def implicit_scores(name: str, settings: dict, matrix) -> np.ndarray:
    """Every user's score of every item [users, items + 1] by an `implicit` model fitted on `matrix`."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from implicit.nearest_neighbours import CosineRecommender

    kind = {"item-knn": CosineRecommender, "als": AlternatingLeastSquares, "bpr": BayesianPersonalizedRanking}[name]
    from threadpoolctl import threadpool_limits

    model = kind(**settings)
    with threadpool_limits(1, "blas"):  # implicit's own threads do the work; OpenBLAS's would fight them
        model.fit(matrix.tocsr(), show_progress=False)
    if name == "item-knn":
        return np.asarray((matrix @ model.similarity).todense())
    return np.asarray(model.user_factors) @ np.asarray(model.item_factors).T


def matrix_scorer(scores: np.ndarray, trained_items: torch.Tensor):
    """A Scorer of a users x items score matrix: a case's row, with its history and the items no training history
    holds at -inf."""
    table = torch.from_numpy(scores).float().masked_fill(~trained_items, float("-inf"))

    def scorer(cases) -> torch.Tensor:
        chosen = table[list(cases.users)].clone()
        for row, history in enumerate(cases.histories):
            chosen[row, list(history)] = float("-inf")
        return chosen

    return scorer


def tuned_baseline(name: str, ratings) -> tuple[dict, object]:
    """(the setting with the best validation NDCG@10 and every setting's, the test Scorer refitted with it)."""
    from aigc.evaluation.ranking import protocol_scores

    users = range(len(ratings.users))
    fit = [ratings.warm(u)[:-2] if len(ratings.warm(u)) >= 3 else ratings.warm(u) for u in users]
    refit = [ratings.warm(u)[:-1] if len(ratings.warm(u)) >= 3 else ratings.warm(u) for u in users]
    validation = {"test": ratings.cases("validation"), "cold": ratings.cases("validation").take(0)}
    tried = []
    for settings in GRIDS[name]:
        trained_items = torch.from_numpy(np.asarray(user_items(ratings, fit).sum(0)).ravel() > 0)
        scorer = matrix_scorer(implicit_scores(name, settings, user_items(ratings, fit)), trained_items)
        tried.append({"settings": settings, "val_ndcg@10": protocol_scores(scorer, ratings, validation)["ndcg@10"]})
    best = max(tried, key=lambda entry: entry["val_ndcg@10"])
    matrix = user_items(ratings, refit)
    trained_items = torch.from_numpy(np.asarray(matrix.sum(0)).ravel() > 0)
    started = time.perf_counter()
    scores = implicit_scores(name, best["settings"], matrix)
    fitted = time.perf_counter() - started
    return {"chosen": best["settings"], "tried": tried, "fit_seconds": fitted}, matrix_scorer(scores, trained_items)


def text_scorer(vectors: torch.Tensor):
    """Each item scored by the cosine of its vector with the mean of the history's vectors [items + 1, width]."""
    vectors = torch.nn.functional.normalize(vectors, dim=1)

    def scorer(cases) -> torch.Tensor:
        profiles = torch.stack([vectors[list(history)].mean(0) for history in cases.histories])
        scores = profiles @ vectors.T
        scores[:, 0] = float("-inf")
        for row, history in enumerate(cases.histories):
            scores[row, list(history)] = float("-inf")
        return scores

    return scorer


def tfidf_vectors(ratings) -> torch.Tensor:
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer(sublinear_tf=True).fit_transform(ratings.catalogue.texts)
    return torch.cat([torch.zeros(1, matrix.shape[1]), torch.from_numpy(matrix.toarray()).float()])


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

    shown = []
    for user in EXAMPLE_USERS:
        history = list(ratings.cases("test").histories[ratings.users.index(user)])
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
    report["text only: LM vectors"] = protocol_scores(text_scorer(text_model.features.cpu()), ratings, cases)
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
