"""`aigc compress`: prune, fine-tune, quantise a trained run into a new run directory."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = """examples:
  aigc compress runs/gan --quantize int8 --out runs/gan-int8          # Linear layers in int8 (the MLP GAN: faster)
  aigc compress runs/mnist --quantize bf16 --out runs/mnist-bf16      # half the file, bf16 compute
  aigc compress runs/mnist --prune 0.3 --out runs/mnist-pruned        # zero the 30% smallest weights per layer
  aigc compress runs/mnist --prune 0.3 --prune-structure channels --finetune-kimg 20 --out runs/mnist-p30ft
  aigc sample runs/gan-int8 --n 64 --out grid.png                     # the result is an ordinary run directory
"""


def register(commands) -> None:
    from aigc.cli.options import add_command, add_options
    from aigc.models.compression import CompressionConfig

    parser = add_command(commands, "compress", "make a smaller or faster copy of a trained model", EXAMPLES)
    parser.add_argument("model", type=Path, help="run directory (newest checkpoint) or checkpoint .safetensors")
    parser.add_argument("--out", type=Path, required=True, help="run directory to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it holds anything")
    parser.add_argument("--data-dir", help="the run's data set, for --finetune-kimg (default: where it trained)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_options(parser, CompressionConfig, "compression")
    parser.set_defaults(run=run)


def run(args) -> int:
    import shutil

    from aigc.cli.options import apply
    from aigc.compression import compress_checkpoint
    from aigc.core.errors import UserError
    from aigc.models.compression import CompressionConfig

    options = apply(CompressionConfig(), args, "compression")
    if args.out.exists() and any(args.out.iterdir()):
        if not args.overwrite:
            raise UserError(f"{args.out} already holds files; choose another --out or pass --overwrite")
        if args.model.resolve().is_relative_to(args.out.resolve()):
            raise UserError(f"--out {args.out} holds the model being compressed; choose another --out")
        shutil.rmtree(args.out)
    path = compress_checkpoint(args.model, args.out, options, args.progress, args.data_dir)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MiB)")
    return 0
