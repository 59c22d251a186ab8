"""The customer-service assistant (the tutorial's section 6.1): a customer's message is given an intent (by a
classifier run trained on the pairs' intents, or the nearest retrieved pair's), the pairs whose questions best
match it are retrieved from a search index of past conversations (retrieval/index.py), and a language model
fine-tuned on the pairs in that same form writes the reply. What the model reads is one system message before
the conversation:

    Intent: cancel_order
    Similar request: how do I cancel order 57
    Its answer: Sure. 1. Open {{Order History}}. ...

(a long answer cut at its last line end within ANSWER_CHARS characters).

`training_rows` writes each indexed pair as such a conversation, its context retrieved from the other pairs
(never itself), so the generator learns from exactly what it is given when served; `aigc assistant data` saves
them for `aigc train lm --data chat:FILE`.

An assistant is a directory holding `assistant.json`: the generator, the index and the intent model it was put
together from (`aigc assistant create`), each pinned by a fingerprint, so that one replaced since is refused
rather than silently mixed with the others. `aigc serve ASSISTANT` serves it on /v1/chat/completions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aigc.core.errors import UserError
from aigc.core.io import read_manifest
from aigc.retrieval.index import Hit, Index, fingerprint, index_fingerprint

FILE = "assistant.json"
FORMAT = 1
CLASSIFIER, NEIGHBOURS = "classifier", "neighbours"  # where an intent comes from: a classifier run, or the nearest pair
CANDIDATES = 50  # the best-matching pairs among which the intent chooses those placed in the prompt
# of a retrieved answer in the prompt: Bitext's replies are 660 characters (about 170 BPE tokens) on average, 2,300
# at most; 400 (its opening lines) leaves a context of 512 tokens room for the request and a reply of average length
# and more (at 800, replies ran past the context: measured in docs/benchmarks.md#customer-service)
ANSWER_CHARS = 400


@dataclass(frozen=True)
class Context:
    """What the assistant found for a customer's message: its intent, where that came from, and the retrieved
    pairs placed in the prompt, best first."""

    intent: str
    source: str  # CLASSIFIER or NEIGHBOURS
    hits: list[Hit]

    def extension(self) -> dict:
        """What a response adds to OpenAI's fields, as `aigc.assistant`."""
        return {
            "intent": self.intent,
            "intent_source": self.source,
            "retrieved": [hit.pair.id for hit in self.hits],
            "retrieved_intents": [hit.pair.intent for hit in self.hits],
        }


def system_message(intent: str, hits: list[Hit]) -> str:
    lines = [f"Intent: {intent}"] if intent else []
    for hit in hits:
        lines += [f"Similar request: {hit.pair.question}", f"Its answer: {shortened(hit.pair.answer)}"]
    return "\n".join(lines)


def shortened(answer: str) -> str:
    """A retrieved answer as the prompt holds it: whole up to ANSWER_CHARS characters, else its lines up to the
    last that ends within them (without a line end there, its words), so the reply still has room."""
    if len(answer) <= ANSWER_CHARS:
        return answer
    kept = answer[:ANSWER_CHARS]
    for end in (kept.rfind("\n"), kept.rfind(" "), ANSWER_CHARS):
        if kept[:end].strip():
            return kept[:end].rstrip()
    return kept


def prompted(messages: list[dict], intent: str, hits: list[Hit]) -> list[dict]:
    """The conversation as the generator reads it: the system message of intent and retrieved pairs first (none
    when there is neither)."""
    system = system_message(intent, hits)
    return [{"role": "system", "content": system}, *messages] if system else list(messages)


def with_intent_first(hits: list[Hit], intent: str) -> list[Hit]:
    """The hits of `intent` before the others, each group in rank order (the classifier's intent chooses among
    the neighbours; the neighbours do not overrule it)."""
    return sorted(hits, key=lambda hit: hit.pair.intent != intent)


def check_answers(answers: int) -> None:
    if answers < 0:
        raise UserError(f"--answers {answers}: give 0 or more (the retrieved pairs placed in the prompt)")


def training_rows(index: Index, answers: int) -> list[dict]:
    """Each indexed pair as a chat row: its question after the system message of its own intent and the
    `answers` best other pairs, and its answer to learn."""
    check_answers(answers)
    pairs = index.pairs
    found = index.query([pair.question for pair in pairs], max(CANDIDATES, answers) + 1)
    rows = []
    for pair, hits in zip(pairs, found, strict=True):
        others = with_intent_first([hit for hit in hits if hit.pair.id != pair.id], pair.intent)[:answers]
        asked = [{"role": "user", "content": pair.question}, {"role": "assistant", "content": pair.answer}]
        rows.append({"messages": prompted(asked, pair.intent, others)})
    return rows


class Assistant:
    """Intent, retrieval and the prompt of a conversation; the generator that answers it is served beside it."""

    def __init__(self, index: Index, answers: int, intents=None):
        self.index, self.answers = index, answers
        self.intents = intents  # (family, model, config) of a classifier run, or None: the neighbours decide

    def contexts(self, questions: list[str]) -> list[Context]:
        """The context of each question: its intent and the `answers` pairs to place in its prompt."""
        found = self.index.query(questions, max(CANDIDATES, self.answers))
        if self.intents is None:
            intents = [hits[0].pair.intent if hits else "" for hits in found]
            source = NEIGHBOURS
        else:
            family, model, config = self.intents
            probabilities = family.classify(model, questions, config.sample)
            labels = family.labels(model)
            intents = [labels[i] for i in probabilities.argmax(-1).tolist()]
            source = CLASSIFIER
        return [
            Context(intent, source, with_intent_first(hits, intent)[: self.answers])
            for intent, hits in zip(intents, found, strict=True)
        ]

    def prompt(self, messages: list[dict]) -> tuple[list[dict], Context]:
        """(the conversation with the assistant's system message first, its context), from its newest
        customer message; UserError when it has none."""
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        if not question.strip():
            raise UserError("the conversation has no customer message; end it with a non-empty user message")
        context = self.contexts([question])[0]
        return prompted(messages, context.intent, context.hits), context

    def info(self) -> dict:
        """What GET /v1/models says of it."""
        source = NEIGHBOURS if self.intents is None else CLASSIFIER
        return {"index": self.index.source, "pairs": len(self.index.pairs), "answers": self.answers,
                "intent_source": source}  # fmt: skip


def create(out: Path, generator: Path, index: Path, intents: Path | None, answers: int) -> dict:
    """Write the assistant directory `out` (its assistant.json) of a generator run, an index and an optional
    intent classifier run, after checking that they fit together; the manifest written."""
    from aigc.families.registry import checkpoint_path

    check_answers(answers)
    parts = {"generator": generator, "index": index, **({"intents": intents} if intents else {})}
    for role, path in parts.items():
        if not path.exists():
            raise UserError(f"--{role} {path} does not exist")
    manifest = {"format": FORMAT, "answers": answers, "index": str(index.resolve())}
    manifest["index_fingerprint"] = index_fingerprint(index)
    for role in ("generator", "intents"):
        if role in parts:
            checkpoint = checkpoint_path(parts[role]).resolve()
            manifest |= {role: str(checkpoint), f"{role}_fingerprint": fingerprint(checkpoint)}
    assemble(manifest, out, "cpu")  # refuses parts that do not fit together
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    except OSError as error:
        raise UserError(f"cannot write {out / FILE} ({error.strerror}); choose a writable --out") from None
    return manifest


def is_assistant(path: Path) -> bool:
    return (Path(path) / FILE).is_file()


def load(directory: Path, device: str = "cpu"):
    """(assistant, generator model, its run config, its checkpoint) of an assistant directory; UserError when a
    part is gone, has changed since it was created, or does not fit the others."""
    return assemble(manifest_of(directory), directory, device)


def manifest_of(directory: Path) -> dict:
    """The manifest of an assistant directory; UserError when it is unreadable or a part it names is gone or has
    changed since it was created."""
    manifest = read_manifest(directory, FILE, FORMAT, "an assistant", "create it with aigc assistant create")
    for role in ("generator", "intents", "index"):
        if role not in manifest:
            continue
        path = Path(manifest[role])
        found = index_fingerprint(path) if role == "index" else fingerprint(path)
        if found != manifest.get(f"{role}_fingerprint"):
            raise UserError(
                f"{directory}: its {role} {path} is gone or has changed since it was created; "
                "run aigc assistant create again"
            )
    return manifest


def assemble(manifest: dict, where: Path, device: str):
    """The parts a manifest names, loaded and checked against each other."""
    from aigc.families.registry import family_of, load_model

    try:
        generator = Path(manifest["generator"])
        answers = int(manifest["answers"])
        index = Index.load(Path(manifest["index"]))
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{where}/{FILE} lacks the generator, index or answers; create it again") from None
    model, config = load_model(generator, device)
    family = family_of(config)
    if family.modality != "text" or not family.info(model, config).get("chat"):
        raise UserError(
            f"generator {generator} is not a chat model; fine-tune a language model on conversations "
            "(aigc assistant data, then aigc train lm --data chat:FILE)"
        )
    intents = None
    if manifest.get("intents"):
        intents = load_intents(Path(manifest["intents"]), index, device)
    return Assistant(index, answers, intents), model, config, generator


def load_intents(path: Path, index: Index, device: str):
    """(family, model, config) of an intent classifier run; UserError unless it labels texts with the index's
    intents (a classifier of other labels was trained for another data set)."""
    from aigc.families.registry import family_of, load_model

    model, config = load_model(path, device)
    family = family_of(config)
    if family.modality != "labels":
        raise UserError(f"intent model {path} is a {family.name} run; give a classifier run (aigc train classifier)")
    intents = {pair.intent for pair in index.pairs if pair.intent}
    if not intents:
        raise UserError(f"the index {index.source} has no intents to classify; create the assistant without --intents")
    missing = sorted(intents - set(family.labels(model)))
    if missing:
        raise UserError(
            f"intent model {path} does not know the intents {', '.join(missing[:5])} of the index {index.source}; "
            "it was trained on other labels: train it on the index's data"
        )
    return family, model, config
