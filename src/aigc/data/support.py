"""Customer-service pairs: a customer's question, the reply an agent gave, and its intent - what a service
assistant retrieves from and learns to answer like.

`bitext`: the Bitext customer-support set (its `instruction`, `response` and `intent` columns; replies span
several lines and keep their `{{placeholders}}`), split exactly as `--data bitext` splits it for a classifier
(data/labelled.py: 80/10/10 by `random_state=0`, stratified by intent), so that the intent classifier, the reply
generator and the retrieval index all hold out the same questions.
"""

from __future__ import annotations

from dataclasses import dataclass

from aigc.data.labelled import BITEXT, LabelledDataConfig, find, read_csv, split_indices


@dataclass(frozen=True)
class Pair:
    id: int  # its row among the file's, from 0
    question: str
    answer: str
    intent: str


def read_pairs(name: str, data_dir: str | None = None) -> dict[str, list[Pair]]:
    """The pairs of data set `name` (`bitext`) by split; UserError naming the file and line of a bad row."""
    from aigc.core.errors import UserError

    if name != "bitext":
        raise UserError(f"unknown question-answer data set {name!r}; choose bitext")
    path = find(BITEXT, data_dir, "bitext")
    questions = read_csv(path, LabelledDataConfig(text_column="instruction", label_column="intent"))
    answers = read_csv(path, LabelledDataConfig(text_column="response", label_column="intent"))
    pairs = [
        Pair(i, question, answer, intent)
        for i, (question, answer, intent) in enumerate(
            zip(questions.texts, answers.texts, questions.labels, strict=True)
        )
    ]
    return {split: [pairs[i] for i in chosen] for split, chosen in split_indices(questions).items()}
