"""`aigc classify`: the labels of texts by a classifier run, with their probabilities - texts from --text, a
file (one per line, or a .jsonl's "text" fields) or standard input - printed one per line, or as JSON lines."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

EXAMPLES = """examples:
  aigc classify runs/phrasebank-classifier --text "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn."
  aigc classify runs/phrasebank-classifier --file headlines.txt --json > labels.jsonl
  tail -f news.txt | aigc classify runs/phrasebank-classifier
"""
MAX_TEXTS = 1_000_000


def register(commands) -> None:
    from aigc.cli.options import add_command

    parser = add_command(commands, "classify", "label texts with a classifier", EXAMPLES)
    parser.add_argument("model", type=Path, help="classifier run directory (newest checkpoint) or checkpoint file")
    parser.add_argument("--text", action="append", help="a text to label (repeat for several)")
    parser.add_argument("--file", type=Path, help="texts to label: one per line, or a .jsonl with a 'text' field")
    parser.add_argument("--json", action="store_true", help="one JSON object per text: label and probabilities")
    parser.add_argument("--temperature", type=float, help="divide the logits by this (default: the run's, fitted)")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from aigc.core.device import resolve_device
    from aigc.core.errors import UserError
    from aigc.families.registry import family_of, load_model, with_sample

    if args.batch_size < 1:
        raise UserError("--batch-size must be positive")
    model, config = load_model(args.model, resolve_device(args.device))
    family = family_of(config)
    if family.modality != "labels":
        raise UserError(f"{args.model} is a {family.name} run, which generates {family.modality}; give a classifier")
    settings = {} if args.temperature is None else {"temperature": args.temperature}
    sample = with_sample(config, settings).sample
    labels = family.labels(model)
    for texts in batches(args):
        family.check_request(model, texts, sample)
        probabilities = family.classify(model, texts, sample, batch_size=args.batch_size)
        for text, row in zip(texts, probabilities, strict=True):
            print(shown(text, labels, row.tolist(), args.json), flush=True)
    return 0


def batches(args) -> Iterator[list[str]]:
    """The texts of --text and --file (its non-empty lines, or a .jsonl's "text" fields) as one batch; without
    either, each non-empty line of standard input as it arrives (so `tail -f` output is labelled as it comes)."""
    from aigc.core.errors import UserError

    texts = list(args.text or [])
    if args.file is not None:
        texts += file_texts(args.file)
    if not texts and args.file is None:
        yield from ([line.rstrip("\n")] for line in sys.stdin if line.strip())
        return
    if not 1 <= len(texts) <= MAX_TEXTS:
        raise UserError(f"{len(texts)} texts given; label between 1 and {MAX_TEXTS:,} at once")
    yield texts


def file_texts(path: Path) -> list[str]:
    """The non-empty lines of a text file, or the "text" fields of a .jsonl."""
    from aigc.core.errors import UserError
    from aigc.core.io import read_text_file
    from aigc.data.text import jsonl_texts

    if not path.is_file():
        raise UserError(f"--file {path} does not exist")
    if path.suffix == ".jsonl":
        return jsonl_texts(path)
    return [line.removesuffix("\r") for line in read_text_file(path).split("\n") if line.strip()]


def shown(text: str, labels: tuple[str, ...], probabilities: list[float], as_json: bool) -> str:
    import json

    best = max(range(len(labels)), key=probabilities.__getitem__)
    if as_json:
        chances = dict(zip(labels, probabilities, strict=True))
        return json.dumps({"text": text, "label": labels[best], "probabilities": chances})
    others = ", ".join(
        f"{label} {p:.2f}" for label, p in zip(labels, probabilities, strict=True) if label != labels[best]
    )
    return f"{labels[best]} {probabilities[best]:.2f} ({others}): {text}"
