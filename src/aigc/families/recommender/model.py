"""The recommender a run builds: the sequential recommender (models/recommender.py) with its run's catalogue -
item ids and titles - and every user's likes, so that a user id is enough to ask it for recommendations."""

from __future__ import annotations

import functools
import re

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
        return self.likes[self.starts[index] : self.starts[index + 1]].tolist()

    def items_named(self, names: list[str]) -> list[int]:
        """The item indices of item ids or titles (as the catalogue writes them, case aside; a title without its
        year when only one item has it); UserError naming each that matches nothing, or an ambiguous one."""
        found, unmatched = [], []
        for name in names:
            key = " ".join(name.split()).casefold()
            candidates = self.names.get(name.strip()) or self.names.get(key) or self.names.get(f"short:{key}", [])
            if len(candidates) > 1:
                titles = "; ".join(self.titles[i - 1] for i in candidates[:5])
                raise UserError(f"{name!r} names {len(candidates)} items ({titles}); give the title with its year")
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
