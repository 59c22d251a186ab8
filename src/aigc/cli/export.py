"""`aigc export`: write a run's model in another ecosystem's format (a language model as a Hugging Face
directory that transformers, vLLM and llama.cpp's converter read with no custom code)."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = """examples:
  aigc export runs/shakespeare --format hf --out hf/shakespeare
  aigc export runs/support-lora --format hf --merge-lora --out hf/support   # adapters folded in
  python -c "from transformers import pipeline; print(pipeline('text-generation', 'hf/shakespeare')('ROMEO:'))"
"""


def register(commands) -> None:
    from aigc.cli.options import add_command

    parser = add_command(commands, "export", "write a model in another ecosystem's format", EXAMPLES)
    parser.add_argument("model", type=Path, help="run directory (newest checkpoint) or checkpoint .safetensors")
    parser.add_argument("--format", default="hf", help="hf: a Hugging Face model directory (default)")
    parser.add_argument("--out", type=Path, required=True, help="the directory to write")
    parser.add_argument("--merge-lora", action="store_true", help="fold a LoRA run's adapters into the weights")
    parser.set_defaults(run=run)


def run(args) -> int:
    from aigc.core.errors import UserError
    from aigc.families.registry import family_of, load_model

    model, config = load_model(args.model)
    family = family_of(config)
    if args.format not in family.export_formats:
        formats = ", ".join(family.export_formats) or "none yet"
        raise UserError(f"--format {args.format}: {family.name} models export as {formats}")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise UserError(f"{args.out} already exists and is not an empty directory; choose a new --out")
    files = family.export(model, config, args.format, args.out, merge_lora=args.merge_lora)
    print(f"wrote {', '.join(f.name for f in files)} to {args.out}")
    return 0
