"""Ratings as recommendation data: MovieLens's files (`ratings.csv`, `movies.csv`, `tags.csv`) read into each
user's liked items in time order and each item's text, and the cases a recommender is trained and judged on.

A like is a rating of `--min-rating` or more (4 of 5 stars by default). Leave-last-out (as SASRec and most
sequential recommenders are judged): each user's last liked item is the test target, the one before it the
validation target, the rest train. Cold start: `--cold-items` of the items liked 5 times or more (chosen by a
fixed seed) are held out of training entirely - no user's history holds them while the model learns - and each
like of one is a cold case, ranked against every item from the user's history before the test target. An item's
text is its title (with the year), its genres and the tags users gave it most often; an item nobody liked yet has
its text all the same, which is what a text-aware model ranks it by.
"""

from __future__ import annotations

import collections
import csv
import functools
import io
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from aigc.core.config import Config
from aigc.core.errors import UserError
from aigc.core.io import read_text_file
from aigc.data.download import data_roots

MOVIELENS = "movielens"
COLD_MIN_LIKES = 5  # an item held out for cold start has at least this many likes: enough cases to judge it
SEED = 0  # which items are held out
COLUMNS = {
    "ratings.csv": ("userId", "movieId", "rating", "timestamp"),
    "movies.csv": ("movieId", "title", "genres"),
    "tags.csv": ("movieId", "tag"),
}
NO_GENRES = "(no genres listed)"


@dataclass(frozen=True)
class RatingsConfig(Config):
    """Which ratings a recommender learns from, what counts as a like, and which items are held out."""

    name: str = field(
        default=MOVIELENS,
        metadata={
            "help": "movielens (ml-latest-small, under --data-dir) | movielens:DIR (a folder in its form: "
            "ratings.csv, movies.csv, tags.csv optional)",
            "flag": "--data",
        },
    )
    data_dir: str | None = field(default=None, metadata={"help": "root holding the data set files"})
    min_rating: float = field(default=4.0, metadata={"help": "a rating of at least this is a like"})
    cold_items: float = field(
        default=0.1,
        metadata={
            "help": f"share of the items liked {COLD_MIN_LIKES}+ times held out of training to measure cold start "
            "(0: train on every item)",
            "min": 0.0,
            "below": 1.0,
        },
    )
    tags: int = field(default=5, metadata={"help": "tags in an item's text, the most given first", "min": 0})


@dataclass(frozen=True)
class Catalogue:
    """Every item: item index i + 1 is ids[i] (index 0 pads histories), with its title and text."""

    ids: tuple[str, ...]
    titles: tuple[str, ...]
    texts: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Cases:
    """Ranking cases: the history a model reads (item indices, oldest first), the item it should rank high, and
    the user (an index into `Ratings.users`)."""

    users: tuple[int, ...]
    histories: tuple[tuple[int, ...], ...]
    targets: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.targets)

    def take(self, count: int) -> Cases:
        return Cases(self.users[:count], self.histories[:count], self.targets[:count])


@dataclass(frozen=True)
class Ratings:
    """Each user's liked items (indices, oldest first) and every item they rated, the catalogue, and the items
    held out of training."""

    catalogue: Catalogue
    users: tuple[str, ...]
    liked: tuple[tuple[int, ...], ...]
    rated: tuple[frozenset[int], ...]
    cold: frozenset[int]

    def warm(self, user: int) -> tuple[int, ...]:
        """A user's likes of items that train."""
        return tuple(item for item in self.liked[user] if item not in self.cold)

    def histories(self, held_out: int) -> list[tuple[int, ...]]:
        """Each user's warm likes but the last `held_out` (1: the test target's; 2: the validation target's too),
        in user order; a user with fewer than three has no targets, and all of them."""
        warm = [self.warm(user) for user in range(len(self.users))]
        return [likes[:-held_out] if len(likes) >= 3 else likes for likes in warm]

    def training_histories(self) -> list[tuple[int, ...]]:
        """What a model learns from: each user's warm likes but the validation and test targets."""
        return [history for history in self.histories(held_out=2) if history]

    def cases(self, split: str) -> Cases:
        """validation: the second-to-last warm like after the training history; test: the last after the rest;
        cold: each like of a held-out item after the test history (every warm like but the last)."""
        rows = []
        for user in range(len(self.users)):
            warm = self.warm(user)
            if len(warm) < 3:
                continue
            if split == "cold":
                held_out = [item for item in self.liked[user] if item in self.cold]
            else:
                held_out = [warm[-2] if split == "validation" else warm[-1]]
            history = warm[:-2] if split == "validation" else warm[:-1]
            rows += [(user, history, target) for target in held_out]
        return Cases(*(tuple(column) for column in zip(*rows, strict=True))) if rows else Cases((), (), ())


def read_ratings(config: RatingsConfig) -> Ratings:
    """The ratings `config.name` names; UserError naming the file and line of anything unreadable."""
    return _read(config.name, config.data_dir, config.min_rating, config.cold_items, config.tags)


@functools.lru_cache(maxsize=2)
def _read(name: str, data_dir: str | None, min_rating: float, cold_items: float, tags: int) -> Ratings:
    folder = ratings_folder(name, data_dir)
    catalogue = read_catalogue(folder, tags)
    users, liked, rated = read_likes(folder / "ratings.csv", catalogue, min_rating)
    return Ratings(catalogue, users, liked, rated, held_out(liked, cold_items))


def ratings_folder(name: str, data_dir: str | None) -> Path:
    base, _, path = name.partition(":")
    if base != MOVIELENS:
        raise UserError(f"unknown ratings data set {name!r}; choose movielens or movielens:DIR")
    if path:
        if not (Path(path) / "ratings.csv").is_file():
            raise UserError(f"--data {name}: no ratings.csv in {path}; give a folder in MovieLens's form")
        return Path(path)
    for root in data_roots(data_dir):
        if (root / MOVIELENS / "ratings.csv").is_file():
            return root / MOVIELENS
    places = " or ".join(str(root / MOVIELENS) for root in data_roots(data_dir))
    raise UserError(f"movielens: no ratings.csv in {places}; put ml-latest-small there, or pass --data-dir DIR")


def table(path: Path, optional: bool = False) -> list[tuple[str, list[str]]]:
    """(file:line, the COLUMNS fields) of each row of a MovieLens CSV; UserError naming a missing column or a
    short row. An optional file that is absent has no rows."""
    if optional and not path.is_file():
        return []
    reader = csv.reader(io.StringIO(read_text_file(path), newline=""))
    wanted = COLUMNS[path.name]
    try:
        header = [name.strip() for name in next(reader, [])]
        missing = [column for column in wanted if column not in header]
        if missing:
            raise UserError(
                f"{path}: no column {', '.join(map(repr, missing))} in its header ({', '.join(header) or 'empty'}); "
                f"MovieLens's {path.name} has {','.join(wanted)}"
            )
        at = [header.index(column) for column in wanted]
        rows = []
        for row in reader:
            if not row:
                continue
            place = f"{path}:{reader.line_num}"
            if len(row) <= max(at):
                raise UserError(f"{place}: {len(row)} fields where the header has {len(header)}; a quote left open?")
            rows.append((place, [row[i].strip() for i in at]))
    except csv.Error as error:
        raise UserError(f"{path}:{reader.line_num}: not readable as CSV ({error})") from None
    return rows


def number(text: str, place: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UserError(f"{place}: {what} {text!r} is not a number")
    return value


def read_catalogue(folder: Path, most_tags: int) -> Catalogue:
    """movies.csv's items in file order, each with its text: title, genres and its most given tags."""
    rows = table(folder / "movies.csv")
    given: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for _, (item, tag) in table(folder / "tags.csv", optional=True):
        if tag:
            given[item][tag.lower()] += 1
    ids, titles, texts = [], [], []
    for place, (item, title, genres) in rows:
        if not title:
            raise UserError(f"{place}: movie {item} has no title")
        ids.append(item)
        titles.append(title)
        parts = [title, ", ".join(g for g in genres.split("|") if g and g != NO_GENRES)]
        tags = [tag for tag, _ in given[item].most_common(most_tags)]
        texts.append(" | ".join(part for part in (*parts, ", ".join(tags)) if part))
    duplicates = [item for item, count in collections.Counter(ids).items() if count > 1]
    if duplicates:
        raise UserError(f"{folder / 'movies.csv'}: movie {duplicates[0]} is listed twice; keep one row per movie")
    return Catalogue(tuple(ids), tuple(titles), tuple(texts))


def read_likes(path: Path, catalogue: Catalogue, min_rating: float):
    """(user ids, each user's likes in time order, each user's rated items) of ratings.csv; UserError naming the
    line of a rating or timestamp that is not a number, or of a movie movies.csv lacks. Users are in the order of
    their ids (numerically when every id is a number)."""
    index = {item: i + 1 for i, item in enumerate(catalogue.ids)}
    events: dict[str, list[tuple[float, int, int]]] = collections.defaultdict(list)
    rated: dict[str, set[int]] = collections.defaultdict(set)
    for order, (place, (user, item, rating, timestamp)) in enumerate(table(path)):
        if item not in index:
            raise UserError(f"{place}: movie {item!r} is not in movies.csv; add it there or drop its ratings")
        stars, when = number(rating, place, "rating"), number(timestamp, place, "timestamp")
        rated[user].add(index[item])
        if stars >= min_rating:
            events[user].append((when, order, index[item]))  # ties in time keep the file's order
    if not events:
        raise UserError(f"{path}: no rating reaches --min-rating {min_rating:g}; lower it")
    users = tuple(sorted(rated, key=lambda u: (not u.isdecimal(), int(u) if u.isdecimal() else 0, u)))
    liked = tuple(once_each(item for *_, item in sorted(events[user])) for user in users)
    return users, liked, tuple(frozenset(rated[user]) for user in users)


def once_each(items) -> tuple[int, ...]:
    """The items in time order, an item liked twice (rated again) at its latest like only."""
    ordered = list(items)
    last = {item: position for position, item in enumerate(ordered)}
    return tuple(item for position, item in enumerate(ordered) if last[item] == position)


def held_out(liked: tuple[tuple[int, ...], ...], share: float) -> frozenset[int]:
    """`share` of the items liked COLD_MIN_LIKES times or more, chosen by SEED."""
    likes = collections.Counter(item for history in liked for item in history)
    eligible = sorted(item for item, count in likes.items() if count >= COLD_MIN_LIKES)
    return frozenset(random.Random(SEED).sample(eligible, round(share * len(eligible))))
