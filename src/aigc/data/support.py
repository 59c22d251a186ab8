"""Customer-service pairs: a customer's question, the reply an agent gave, and its intent - what a service
assistant retrieves from and learns to answer like.

- `bitext`: the Bitext customer-support set (its `instruction`, `response` and `intent` columns; replies span
  several lines and keep their `{{placeholders}}`), split exactly as `--data bitext` splits it for a classifier
  (data/labelled.py: 80/10/10 by `random_state=0`, stratified by intent), so that the intent classifier, the
  reply generator and the retrieval index all hold out the same questions.
- `csv:PATH` and `jsonl:PATH`: a user's pairs, the fields named by `Columns` (`--question-column`,
  `--answer-column`, `--intent-column`); the intent is optional (a file without that column has none). Split the
  same way, stratified by intent when there are intents enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aigc.core.errors import UserError
from aigc.data.labelled import BITEXT, Rows, checked_text, distinct_columns, find, read_table, split_indices


@dataclass(frozen=True)
class Pair:
    id: int  # its row among the file's, from 0
    question: str
    answer: str
    intent: str  # "" when the data has none


@dataclass(frozen=True)
class Columns:
    """Which fields of a user's file hold the question, the answer and (optionally) the intent."""

    question: str = "question"
    answer: str = "answer"
    intent: str | None = None  # None: the column "intent" when the file has one
    delimiter: str = ","


BITEXT_COLUMNS = Columns("instruction", "response", "intent")


def read_pairs(name: str, data_dir: str | None = None, columns: Columns = Columns()) -> dict[str, list[Pair]]:
    """The pairs of data set `name` (`bitext`, `csv:PATH`, `jsonl:PATH`) by split; UserError naming the file and
    line of a bad row."""
    if name == "bitext":
        return split_pairs(read_file("csv", find(BITEXT, data_dir, "bitext"), BITEXT_COLUMNS))
    kind, _, path = name.partition(":")
    if kind not in ("csv", "jsonl") or not path:
        raise UserError(f"unknown question-answer data set {name!r}; choose bitext, csv:PATH or jsonl:PATH")
    return split_pairs(read_file(kind, Path(path), columns))


def read_file(kind: str, path: Path, columns: Columns) -> list[tuple[Pair, str]]:
    """Each row's pair, with where it came from (`file:line`)."""
    named = [(columns.question, "--question-column"), (columns.answer, "--answer-column")]
    wanted = distinct_columns(named + ([(columns.intent, "--intent-column")] if columns.intent is not None else []))
    table = read_table(kind, path, wanted, columns.delimiter, optional="" if columns.intent else "intent")
    questions, answers, intents = table.fields
    return [
        (Pair(i, checked_text(question, place), checked_text(answer, place), intent.strip()), place)
        for i, (question, answer, intent, place) in enumerate(
            zip(questions, answers, intents, table.places, strict=True)
        )
    ]


def split_pairs(placed: list[tuple[Pair, str]]) -> dict[str, list[Pair]]:
    """The pairs of each split: split_indices' 80/10/10, stratified by intent where it can be."""
    pairs, places = zip(*placed, strict=True)
    rows = Rows(tuple(p.question for p in pairs), tuple(p.intent for p in pairs), places)
    return {split: [pairs[i] for i in chosen] for split, chosen in split_indices(rows, classes=False).items()}
