"""The recommender a run builds: the sequential recommender (models/recommender.py) with its run's catalogue -
item ids and titles - and every user's likes, so that a user id is enough to ask it for recommendations."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import torch

from aigc.core.errors import UserError
from aigc.data.ratings import Ratings
from aigc.models.recommender import SequentialRecommender

YEAR = re.compile(r"\s*\(\d{4}(?:-\d{4})?\)\s*$")  # the year MovieLens ends a title with: "Heat (1995)"


class Recommender(SequentialRecommender):
    def __init__(self, config):
        super().__init__(config.model, config.features, config.items.representation)
        self.catalogue, self.titles, self.users = config.catalogue, config.titles, config.users
        self.register_buffer("likes", torch.zeros(config.likes, dtype=torch.int32))  # every user's, one after another
        self.register_buffer("starts", torch.zeros(len(config.users) + 1, dtype=torch.int64))  # where each begins

    def keep_likes(self, ratings: Ratings) -> None:
        """Keep each user's likes (every one: training, validation, test and cold items alike)."""
        lengths = torch.tensor([0] + [len(history) for history in ratings.liked])
        self.starts.copy_(lengths.cumsum(0))
        self.likes.copy_(torch.tensor([item for history in ratings.liked for item in history], dtype=torch.int32))

    def history(self, user: str) -> list[int]:
        """The items user id `user` liked, oldest first; UserError for a user the model does not know."""
        index = self.user_index.get(user)
        if index is None:
            raise UserError(f"unknown user {user!r}; this model knows {len(self.users)} users ({self.users[0]}, ...)")
        liked = self.likes[self.starts[index] : self.starts[index + 1]].tolist()
        if not liked:
            raise UserError(f"user {user!r} rated nothing as high as a like; give the items they like as a history")
        return liked

    def described(self, index: int) -> dict:
        """Item index `index` as people know it: its id and title."""
        return {"item": self.catalogue[index - 1], "title": self.titles[index - 1]}

    def weighed(self, history: Sequence[int], items: list[int], count: int) -> list[list[tuple[int, float]]]:
        """For each of `items`, (item index, weight) of the `count` items of the history's newest `context` whose
        leaving out would lower its score most, those that raise it (a history of one item: the item, when the
        score is above 0)."""
        if not count or not items:
            return [[] for _ in items]
        read = list(history[-self.context :])
        device = self.known.device
        weights = self.influence(torch.tensor(read, device=device), torch.tensor(items, device=device)).cpu()
        top = weights.topk(min(count, len(read)), dim=1)
        return [
            [(read[j], float(w)) for j, w in zip(row_j, row_w, strict=True) if w > 0]
            for row_j, row_w in zip(top.indices.tolist(), top.values, strict=True)
        ]

    def items_named(self, names: list[str]) -> list[int]:
        """The item indices of item ids or titles (as the catalogue writes them, case aside; a title without its
        year when only one item has it); UserError naming each that matches nothing, or an ambiguous one."""
        found, unmatched = [], []
        for name in names:
            key = " ".join(name.split()).casefold()
            candidates = self.names.get(name.strip()) or self.names.get(key) or self.names.get(f"short:{key}", [])
            if len(candidates) > 1:
                titles = "; ".join(f"{self.titles[i - 1]}: id {self.catalogue[i - 1]}" for i in candidates[:5])
                raise UserError(
                    f"{name!r} names {len(candidates)} items ({titles}); give the title with its year, or the id"
                )
            found.extend(candidates[:1])
            if not candidates:
                unmatched.append(name.strip())
        if unmatched:
            raise UserError(
                f"no item matches {', '.join(map(repr, unmatched))}; give titles as the catalogue writes them "
                f"({self.titles[0]!r}) or item ids"
            )
        return found

    @functools.cached_property
    def user_index(self) -> dict[str, int]:
        return {user: i for i, user in enumerate(self.users)}

    @functools.cached_property
    def names(self) -> dict[str, list[int]]:
        """Item indices by item id, by title (case-folded) and by title without its year (`short:` title)."""
        names: dict[str, list[int]] = {}
        for index, (item, title) in enumerate(zip(self.catalogue, self.titles, strict=True), start=1):
            key = " ".join(title.split()).casefold()
            for name in (item, key, "short:" + YEAR.sub("", key)):
                names.setdefault(name, []).append(index)
        return names


def build(config) -> Recommender:
    return Recommender(config)
