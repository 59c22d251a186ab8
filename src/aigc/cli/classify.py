"""`aigc classify`: the labels of texts by a classifier run, with their probabilities - texts from --text, a
file (one per line, or a .jsonl's "text" fields) or standard input - printed one per line, or as JSON lines."""

from __future__ import annotations

import sys
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
    texts = read_texts(args)
    family.check_request(model, texts, sample)
    probabilities = family.classify(model, texts, sample, batch_size=args.batch_size)
    for text, row in zip(texts, probabilities, strict=True):
        print(shown(text, family.labels(model), row.tolist(), args.json))
    return 0


def read_texts(args) -> list[str]:
    """The texts of --text, then of --file (or of standard input when neither is given): non-empty lines."""
    import json

    from aigc.core.errors import UserError

    texts = list(args.text or [])
    if args.file is not None:
        if not args.file.is_file():
            raise UserError(f"--file {args.file} does not exist")
        lines = [line for line in args.file.read_text(encoding="utf-8").splitlines() if line.strip()]
        if args.file.suffix == ".jsonl":
            try:
                lines = [json.loads(line)["text"] for line in lines]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UserError(f"--file {args.file}: each line must be a JSON object with a 'text' field") from None
        texts += lines
    elif not texts:
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not 1 <= len(texts) <= MAX_TEXTS:
        raise UserError(f"{len(texts)} texts given; label between 1 and {MAX_TEXTS:,} (--text, --file or stdin)")
    return texts


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
