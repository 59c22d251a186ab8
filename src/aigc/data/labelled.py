"""Labelled texts for classifiers, each in three fixed splits (train, validation, test):

- `phrasebank[:50agree|66agree|75agree|allagree]`: the Financial PhraseBank (Malo et al. 2014), `sentence@label`
  lines in ISO-8859-1, one file per level of annotator agreement. The split is FinBERT's (Araci 2019), so that
  its numbers compare: the 50%-agree file's 4,846 rows in file order, scikit-learn's
  `train_test_split(test_size=0.2, random_state=0)` (970 test), then the same with `test_size=0.1` on the rest
  (388 validation, 3,488 train). A higher level keeps that split, restricted to its own sentences, so no
  sentence moves between splits from one level to another; `phrasebank` (50%) also has `test-allagree`, its
  test sentences on which every annotator agreed (433).
- `banking77` (Casanueva et al. 2020): its `train.csv` and `test.csv` (`text,category`); validation is a
  stratified 10% of train (`random_state=0`).
- `bitext`: the Bitext customer-support requests (`instruction`) and their intents (27), the file's quoted
  multi-line CSV; split as a user's file is.
- `csv:PATH` (`--text-column`, `--label-column`, `--delimiter`) and `jsonl:PATH` (one object per line): a
  user's file, split 80/10/10 by `random_state=0`, stratified by label when every label has at least
  `STRATIFY_MIN` rows.

Labels are kept as the file writes them; a classifier maps them to its classes.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from aigc.core.config import Config
from aigc.core.errors import ConfigError, UserError
from aigc.core.io import read_text_file
from aigc.data.download import data_roots
from aigc.data.text import json_lines
from aigc.data.tokenizer import TokenizerKind

PHRASEBANK_LEVELS = {"50agree": "50Agree", "66agree": "66Agree", "75agree": "75Agree", "allagree": "AllAgree"}
PHRASEBANK_LABELS = ("negative", "neutral", "positive")
STRATIFY_MIN = 10  # rows of the rarest label for a user's file to be split stratified
MIN_ROWS = 20  # of a user's file: its validation and test splits have two rows or more
SEED = 0  # every split's random_state
BITEXT = "customer-support/Bitext_Sample_Customer_Support_Training_Dataset.csv"


@dataclass(frozen=True)
class LabelledDataConfig(Config):
    """Which labelled texts a classifier learns from, and how a user's file is read."""

    name: str = field(
        default="phrasebank",
        metadata={
            "help": "phrasebank[:50agree|66agree|75agree|allagree] | banking77 | bitext | csv:PATH | jsonl:PATH",
            "flag": "--data",
        },
    )
    data_dir: str | None = field(default=None, metadata={"help": "root holding the data set files"})
    text_column: str = field(default="text", metadata={"help": "csv:/jsonl: the field holding the text"})
    label_column: str = field(default="label", metadata={"help": "csv:/jsonl: the field holding the label"})
    delimiter: str = field(default=",", metadata={"help": "csv: the character between fields"})
    tokenizer: TokenizerKind = field(default="char", metadata={"help": "--init none: char, or byte-level bpe"})
    vocab_size: int = field(default=512, metadata={"help": "--init none: tokens of a bpe tokenizer", "min": 256})

    def check(self) -> None:
        if len(self.delimiter) != 1:
            raise ConfigError("delimiter", self.delimiter, "one character, e.g. ';' (a tab: $'\\t' in bash)")


@dataclass(frozen=True)
class Rows:
    """Texts and their labels as written, with where each came from (`file:line`, for error messages)."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    places: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, indices) -> Rows:
        return Rows(*(tuple(column[i] for i in indices) for column in (self.texts, self.labels, self.places)))


@dataclass(frozen=True)
class LabelledData:
    """A data set's splits (train, validation, test, and any extra test subsets) and its labels in class order."""

    splits: dict[str, Rows]
    labels: tuple[str, ...]


def class_indices(rows: Rows, labels: tuple[str, ...]) -> torch.Tensor:
    """Each row's label as its index in `labels`; UserError naming the place of one the model does not know."""
    index = {label: i for i, label in enumerate(labels)}
    for label, place in zip(rows.labels, rows.places, strict=True):
        if label not in index:
            raise UserError(f"{place}: label {label!r} is not one this model knows ({', '.join(labels)})")
    return torch.tensor([index[label] for label in rows.labels], dtype=torch.long)


def read_labelled(config: LabelledDataConfig) -> LabelledData:
    """The data set `config.name` names, split; UserError naming the file and line of anything unreadable."""
    name = config.name
    if name.startswith(("csv:", "jsonl:")):
        kind, _, path = name.partition(":")
        rows = read_csv(Path(path), config) if kind == "csv" else read_jsonl(Path(path), config)
        return split_user_rows(rows)
    base, _, level = name.partition(":")
    if base == "phrasebank":
        return read_phrasebank(config.data_dir, level or "50agree")
    if base == "banking77" and not level:
        return read_banking77(config.data_dir)
    if base == "bitext" and not level:
        bitext = LabelledDataConfig(text_column="instruction", label_column="intent")
        return split_user_rows(read_csv(find(BITEXT, config.data_dir, "bitext"), bitext))
    raise UserError(
        f"unknown labelled data set {name!r}; choose phrasebank[:LEVEL], banking77, bitext, csv:PATH or jsonl:PATH"
    )


def located(relative: str, data_dir: str | None) -> Path | None:
    """The first data root's file `relative`, or None."""
    return next((root / relative for root in data_roots(data_dir) if (root / relative).is_file()), None)


def find(relative: str, data_dir: str | None, what: str) -> Path:
    """The first data root's file `relative`; UserError saying where it was looked for."""
    path = located(relative, data_dir)
    if path is None:
        places = " or ".join(str(root / relative) for root in data_roots(data_dir))
        raise UserError(f"{what}: {places} not found; put the file there, or pass --data-dir DIR")
    return path


def read_phrasebank(data_dir: str | None, level: str) -> LabelledData:
    from sklearn.model_selection import train_test_split

    if level not in PHRASEBANK_LEVELS:
        raise UserError(f"phrasebank:{level}: unknown agreement level; choose one of {', '.join(PHRASEBANK_LEVELS)}")
    path = find(phrasebank_file("50agree"), data_dir, "phrasebank")
    lines = phrasebank_lines(path)
    rows = phrasebank_rows(path, lines)
    rest, test = train_test_split(range(len(rows)), test_size=0.2, random_state=SEED)
    train, validation = train_test_split(rest, test_size=0.1, random_state=SEED)
    indices = {"train": train, "validation": validation, "test": test}
    if level != "50agree":
        kept = set(phrasebank_lines(find(phrasebank_file(level), data_dir, f"phrasebank:{level}")))
        indices = {split: [i for i in chosen if lines[i] in kept] for split, chosen in indices.items()}
    splits = {split: rows.take(chosen) for split, chosen in indices.items()}
    allagree = located(phrasebank_file("allagree"), data_dir)
    if level == "50agree" and allagree is not None:
        agreed = set(phrasebank_lines(allagree))
        splits["test-allagree"] = rows.take([i for i in test if lines[i] in agreed])
    return LabelledData(splits, PHRASEBANK_LABELS)


def phrasebank_file(level: str) -> str:
    return f"financial-phrasebank/Sentences_{PHRASEBANK_LEVELS[level]}.txt"


def phrasebank_lines(path: Path) -> list[str]:
    """The file's lines, as ISO-8859-1 (every byte is a character there, so reading cannot fail), split at line
    feeds only (`splitlines` would also split at bytes such as 0x85, characters in Latin-1)."""
    lines = [line.removesuffix("\r") for line in path.read_text(encoding="latin-1").split("\n")]
    return lines[:-1] if lines and not lines[-1] else lines


def phrasebank_rows(path: Path, lines: list[str]) -> Rows:
    """`sentence@label` lines as rows; UserError naming the line of one without `@` or with another label."""
    texts, labels, places = [], [], []
    for number, line in enumerate(lines, 1):
        place = f"{path}:{number}"
        text, at, label = line.rpartition("@")
        if not at:
            raise UserError(f"{place}: no '@' between the sentence and its label; write it as sentence@label")
        if label.strip() not in PHRASEBANK_LABELS:
            raise UserError(f"{place}: label {label.strip()!r} is not one of {', '.join(PHRASEBANK_LABELS)}")
        texts.append(checked_text(text.strip(), place))
        labels.append(label.strip())
        places.append(place)
    return Rows(tuple(texts), tuple(labels), tuple(places))


def checked_text(text: str, place: str) -> str:
    if not text.strip():
        raise UserError(f"{place}: the text is empty; fill it in or remove the row")
    return text


def read_banking77(data_dir: str | None) -> LabelledData:
    from sklearn.model_selection import train_test_split

    config = LabelledDataConfig(text_column="text", label_column="category")
    train = read_csv(find("banking77/train.csv", data_dir, "banking77"), config)
    test = read_csv(find("banking77/test.csv", data_dir, "banking77"), config)
    fit, validation = train_test_split(range(len(train)), test_size=0.1, random_state=SEED, stratify=train.labels)
    categories = located("banking77/categories.json", data_dir)
    labels = tuple(json.loads(categories.read_text())) if categories else tuple(sorted(set(train.labels)))
    return LabelledData({"train": train.take(fit), "validation": train.take(validation), "test": test}, labels)


def read_csv(path: Path, config: LabelledDataConfig) -> Rows:
    """The texts and labels of a CSV file with a header (see `read_table`)."""
    return labelled_rows(read_table("csv", path, label_columns(config), config.delimiter))


def read_jsonl(path: Path, config: LabelledDataConfig) -> Rows:
    """The texts and labels of a JSON-lines file, one object per line (see `read_table`)."""
    return labelled_rows(read_table("jsonl", path, label_columns(config)))


def label_columns(config: LabelledDataConfig) -> dict[str, str]:
    return distinct_columns([(config.text_column, "--text-column"), (config.label_column, "--label-column")])


def distinct_columns(named: list[tuple[str, str]]) -> dict[str, str]:
    """{column: the flag that names it}; UserError when two flags name the same column."""
    columns: dict[str, str] = {}
    for column, flag in named:
        if column in columns:
            raise UserError(f"{columns[column]} and {flag} both name the column {column!r}; give each its own")
        columns[column] = flag
    return columns


def labelled_rows(table: Table) -> Rows:
    texts, labels = table.fields
    texts = tuple(checked_text(text, place) for text, place in zip(texts, table.places, strict=True))
    labels = tuple(checked_label(label, place) for label, place in zip(labels, table.places, strict=True))
    return Rows(texts, labels, table.places)


@dataclass(frozen=True)
class Table:
    """Some named fields of every row of a user's file, as written (`fields[i]`: column i's), with where each row
    came from (`file:line`)."""

    fields: tuple[tuple[str, ...], ...]
    places: tuple[str, ...]


def read_table(kind: str, path: Path, columns: dict[str, str], delimiter: str = ",", optional: str = "") -> Table:
    """The fields `columns` names ({column: the flag that names it}) of each row of a `kind` ("csv": with a
    header; "jsonl": one object per line) file, and then column `optional`'s ("" where the file lacks it);
    UserError naming a missing column (and the delimiter the header suggests), a file with no rows, or the line
    of a row that is short or not an object."""
    if kind == "csv":
        reader = csv.reader(io.StringIO(read_text_file(path), newline=""), delimiter=delimiter)
        try:
            rows, places = csv_fields(path, reader, columns, delimiter, optional)
        except csv.Error as error:
            raise UserError(f"{path}:{reader.line_num}: not readable as CSV ({error})") from None
    else:
        rows, places = jsonl_fields(path, columns, optional)
    if not rows:
        raise UserError(f"{path} has a header and no rows" if kind == "csv" else f"{path} has no rows")
    return Table(tuple(zip(*rows, strict=True)), tuple(places))


def csv_fields(
    path: Path, reader, columns: dict[str, str], delimiter: str, optional: str
) -> tuple[list[list[str]], list[str]]:
    header = next(reader, None)
    if header is None:
        raise UserError(f"{path} is empty; give a CSV file with a header row")
    named = {name.strip(): i for i, name in enumerate(header)}
    for wanted, flag in columns.items():
        if wanted not in named:
            raise UserError(
                f"{path}: no column {wanted!r} in its header ({', '.join(map(repr, named))}); "
                f"{delimiter_hint(header, delimiter) or f'pass {flag} NAME'}"
            )
    at = [named[column] for column in columns] + ([named.get(optional)] if optional else [])
    rows, places = [], []
    for row in reader:
        if not row:
            continue  # a blank line
        place = f"{path}:{reader.line_num}"
        if len(row) <= max(i for i in at if i is not None):
            raise UserError(f"{place}: {len(row)} fields where the header has {len(header)}; a quote left open?")
        rows.append(["" if i is None else row[i] for i in at])
        places.append(place)
    return rows, places


def delimiter_hint(header: list[str], delimiter: str) -> str:
    """Advice when the header is one field that another delimiter would split."""
    for other, written in ((",", "','"), (";", "';'"), ("\t", "$'\\t'"), ("|", "'|'")):
        if len(header) == 1 and other != delimiter and other in header[0]:
            return f"it looks delimited by {written}: pass --delimiter {written}"
    return ""


def jsonl_fields(path: Path, columns: dict[str, str], optional: str) -> tuple[list[list[str]], list[str]]:
    """Each object's `columns` (the first a string, the others strings or numbers, as written), then its
    `optional` one's."""
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    first, *others = columns
    rows, places = [], []
    for number, row in json_lines(path):
        place = f"{path}:{number}"
        if (
            not isinstance(row, dict)
            or not isinstance(row.get(first), str)
            or not all(isinstance(row.get(other), str | int | float) for other in others)
        ):
            wanted = f"a text {first!r}" + "".join(f" and a {other!r}" for other in others)
            raise UserError(f"{place}: expected an object with {wanted}; pass {'/'.join(columns.values())} NAME")
        given = [] if not optional else ["" if row.get(optional) is None else str(row[optional])]
        rows.append([row[first], *(str(row[other]) for other in others), *given])
        places.append(place)
    return rows, places


def checked_label(label: str, place: str) -> str:
    if not label.strip():
        raise UserError(f"{place}: the label is empty; fill it in or remove the row")
    return label.strip()


def split_user_rows(rows: Rows) -> LabelledData:
    """80% train, 10% validation, 10% test, stratified when every label has STRATIFY_MIN rows; labels sorted."""
    splits = {split: rows.take(chosen) for split, chosen in split_indices(rows).items()}
    return LabelledData(splits, tuple(sorted(set(rows.labels))))


def split_indices(rows: Rows, classes: bool = True) -> dict[str, list[int]]:
    """The rows of each split of a user's file (and of Bitext's): 80% train, 10% validation, 10% test by
    `random_state=SEED`, stratified when every label has STRATIFY_MIN rows; UserError when there are too few
    rows, or (`classes`: the labels are a classifier's classes) fewer than two labels."""
    from collections import Counter

    from sklearn.model_selection import train_test_split

    counts, source = Counter(rows.labels), rows.places[0].rsplit(":", 1)[0]
    if len(counts) < 2 and classes:
        raise UserError(f"{source}: every row has the label {rows.labels[0]!r}; give rows of two labels or more")
    if len(rows) < MIN_ROWS:
        raise UserError(f"{source}: {len(rows)} rows; give at least {MIN_ROWS} (a tenth of them is the test split)")
    stratified = len(counts) > 1 and min(counts.values()) >= STRATIFY_MIN
    by = (lambda chosen: [rows.labels[i] for i in chosen]) if stratified else (lambda chosen: None)
    everything = list(range(len(rows)))
    train, rest = train_test_split(everything, test_size=0.2, random_state=SEED, stratify=by(everything))
    validation, test = train_test_split(rest, test_size=0.5, random_state=SEED, stratify=by(rest))
    return {"train": train, "validation": validation, "test": test}
