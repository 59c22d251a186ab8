"""The recommender family: a sequential recommender (SASRec on aigc's transformer) whose item vectors come from
item ids, from the items' text as an aigc language model reads it (`--text-model RUN`: cold items included), or
both. What evaluation, `aigc recommend` and the service use of it: `scores` (every item's, a history's own
items left out), `recommend` (the top k, each with the history items that weighed most) and the model's
`history(user)` and `items_named(names)`. Its data is in data.py, the model in model.py."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from pathlib import Path

import torch

from aigc.core.errors import UserError
from aigc.data.ratings import Cases, RatingsConfig, read_ratings
from aigc.families.family import Family
from aigc.families.recommender import data
from aigc.families.recommender.config import RecommenderRunConfig, RecommendSampleConfig
from aigc.families.recommender.model import Recommender, build
from aigc.models.recommender import UNSCORED

EXAMPLES = """examples:
  aigc train recommender --data movielens --data-dir DIR --minutes 10              # item ids only (SASRec)
  aigc train lm --data gutenberg --data-dir DIR --tokenizer bpe --out runs/books  # a language model ...
  aigc train recommender --data movielens --text-model runs/books --minutes 10    # ... whose text vectors items get
  aigc train recommender --data movielens:my-shop/ --text-model runs/books         # your ratings, in MovieLens's form
"""


class RecommenderFamily(Family):
    name = "recommender"
    help = "a sequential recommender over liked items (ids, item text by an lm run, or both)"
    examples = EXAMPLES
    run_config = RecommenderRunConfig
    sample_config = RecommendSampleConfig
    flag_components = ("data", "model", "items", "train")
    unused_flags = frozenset({"train.optimizer", "train.memory_format", "model.vocab_size"})
    sampling_modules = ("model",)
    model_type = Recommender
    metrics = "hr@10,ndcg@10,sampled_hr@10,sampled_ndcg@10,cold_hr@10,cold_ndcg@10"
    remedy = "a lower --lr or a longer --warmup-histories"
    run_suffix = "-recommender"
    modality = "items"
    conditions = "histories"
    evaluation = "rankings"
    unit = "history"
    progress_key = "histories"
    selection_metric = "val_loss"

    def title(self, config) -> str:
        m, items = config.model, config.items
        source = f", text by {Path(items.text_model).parent.parent.name}" if items.text_model else ""
        return f"recommender ({m.layers} layers x {m.width}, item {items.representation}{source})"

    # Training -------------------------------------------------------------------------------------------

    def training_data(self, config):
        return data.training_data(config)

    def trainer(self, config, device: torch.device, fresh: bool = True):
        """The trainer; a fresh run first computes the items' text vectors and keeps the users' likes."""
        from aigc.families.recommender.trainer import RecommenderTrainer

        model, ratings = build(config), read_ratings(config.data)
        if fresh:
            trained = {item for history in ratings.training_histories() for item in history}
            model.known[list(trained)] = True
            model.keep_likes(ratings)
            if config.features:
                model.features.copy_(data.item_features(config, ratings))
        withheld = torch.zeros(model.items + 1, dtype=torch.bool)
        withheld[list(ratings.cold)] = True
        return RecommenderTrainer(model, config, device, withheld)

    def progress(self, seen: int) -> dict[str, float]:
        return {self.progress_key: seen}

    def amount(self, seen: int) -> str:
        return f"{seen:,} histories"

    # Recommending ---------------------------------------------------------------------------------------

    def build(self, config) -> Recommender:
        return build(config)

    @torch.no_grad()
    def scores(self, model: Recommender, histories: Sequence[Sequence[int]], batch_size: int = 256) -> torch.Tensor:
        """Every item's score [len(histories), items + 1] (float32, on the CPU) as the next like after each history
        (its newest `context` items read); a history's own items, and what the model cannot rank, score -inf."""
        device, parts = model.known.device, [torch.zeros(0, model.items + 1)]
        with evaluating(model):
            for first in range(0, len(histories), batch_size):
                chunk = histories[first : first + batch_size]
                table, lengths = data.padded(chunk, model.context)
                scores = model(table.to(device), lengths).float().cpu()
                for row, history in enumerate(chunk):
                    scores[row, list(history)] = UNSCORED
                parts.append(scores)
        return torch.cat(parts)

    @torch.no_grad()
    def recommend(self, model: Recommender, histories: Sequence[Sequence[int]], sample, batch_size: int = 256):
        """The top `sample.k` items after each history (none it holds), best first, each with its score, whether it
        is cold (no training history held it) and the `sample.explain` history items whose leaving out would lower
        its score most."""
        with evaluating(model):  # the reasons too: dropout would make them noise
            return self.ranked(model, histories, self.scores(model, histories, batch_size), sample)

    def ranked(self, model: Recommender, histories: Sequence[Sequence[int]], scores: torch.Tensor, sample):
        """The top `sample.k` of each row of `scores` with the reasons `recommend` gives."""
        found = []
        for history, row in zip(histories, scores, strict=True):
            best = row.topk(min(sample.k, len(row)))
            kept = [(int(i), float(s)) for i, s in zip(best.indices, best.values, strict=True) if s > UNSCORED]
            reasons = self.reasons(model, history, [i for i, _ in kept], sample.explain)
            found.append(
                [
                    {**self.item(model, i), "score": s, "cold": not bool(model.known[i]), "because": why}
                    for (i, s), why in zip(kept, reasons, strict=True)
                ]
            )
        return found

    def reasons(self, model: Recommender, history: Sequence[int], items: list[int], count: int) -> list[list[dict]]:
        """For each of `items`, the `count` history items that raise its score most (leave-one-out)."""
        return [
            [{**self.item(model, index), "weight": weight} for index, weight in weighed]
            for weighed in model.weighed(history, items, count)
        ]

    @staticmethod
    def item(model: Recommender, index: int) -> dict:
        """Item index `index` as people know it: its id and title."""
        return model.described(index)

    @staticmethod
    def history(model: Recommender, user: str) -> list[int]:
        """The items user id `user` liked, oldest first; UserError for a user the model does not know."""
        return model.history(user)

    @staticmethod
    def items_named(model: Recommender, names: list[str]) -> list[int]:
        """The item indices of item ids or titles; UserError naming those that match nothing."""
        return model.items_named(names)

    def check_request(self, model: Recommender, histories, sample) -> None:
        for history in histories or ():
            if not history:
                raise UserError("the history is empty; give at least one item the user liked")
            if not all(isinstance(i, int) and 1 <= i <= model.items for i in history):
                raise UserError(f"a history holds an item index outside 1..{model.items}")

    def generate(self, model, seeds, conditions=None, sample=None, batch_size: int = 256, **options):
        """The recommendations after the histories `conditions` (one per seed; a ranking needs no seed): what the
        service's queue hands a recommender, so that requests merge into batches as image requests do."""
        return self.recommend(model, conditions, sample or self.sample_config(), batch_size)

    def info(self, model: Recommender, config) -> dict:
        return {
            "items": model.items,
            "users": len(model.users),
            "representation": model.representation,
            "context": model.context,
        }

    def save_samples(self, model: Recommender, config, device: torch.device, stem: Path) -> None:
        """The recommendations after the first `grid_size` validation histories, beside the item that came next."""
        cases = validation_cases(config.data).take(config.train.grid_size)
        found = self.recommend(model, cases.histories, config.sample)
        lines = []
        for user, history, target, items in zip(cases.users, cases.histories, cases.targets, found, strict=True):
            lines.append(f"user {model.users[user]}, after {model.titles[history[-1] - 1]} liked next: ")
            lines[-1] += model.titles[target - 1]
            lines += [f"  {rank}. {item['title']} ({item['score']:.2f})" for rank, item in enumerate(items, 1)]
        stem.with_suffix(".txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@contextlib.contextmanager
def evaluating(model: Recommender):
    """The model in eval mode (no dropout) for the block, then back in the mode it was in (a snapshot mid-run)."""
    training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(training)


@functools.lru_cache(maxsize=2)
def validation_cases(ratings: RatingsConfig) -> Cases:
    return read_ratings(ratings).cases("validation")
