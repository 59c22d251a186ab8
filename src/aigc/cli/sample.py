"""`aigc sample`: draw images from a run or a checkpoint into a grid PNG or one PNG per seed."""

from __future__ import annotations

import os
from pathlib import Path

EXAMPLES = """examples:
  aigc sample runs/mnist --n 64 --seeds 0-63 --sampler dpmpp-2m --steps 10 --out grid.png
  aigc sample runs/mnist/checkpoints/004000.safetensors --n 1000 --out samples/   # one PNG per seed
  aigc sample runs/mnist --class 7 --guidance 2.0 --n 16 --out sevens.png
  aigc sample runs/mnist-gan --n 64 --truncation 0.8 --out grid.png       # a GAN: one pass, optional truncation
"""
MAX_IMAGES = 100_000


def register(commands) -> None:
    from aigc.cli.options import add_command, add_sample_options

    parser = add_command(commands, "sample", "draw images from a model", EXAMPLES)
    parser.add_argument("model", type=Path, help="run directory (newest checkpoint) or checkpoint .safetensors")
    parser.add_argument("--n", "-n", type=int, help="number of images (default: 64, or as many as --seeds)")
    parser.add_argument("--seeds", help="seeds, e.g. 0-63 or 1,5,9 (default: 0..n-1)")
    parser.add_argument("--class", dest="class_label", type=int, help="draw only this class")
    parser.add_argument(
        "--out",
        default="samples.png",
        help="X.png: one grid; DIR/: one PNG per seed (default: samples.png)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    add_sample_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    import dataclasses

    from aigc.cli.options import given
    from aigc.core.device import resolve_device
    from aigc.core.errors import UserError
    from aigc.core.images import save_grid, save_per_seed
    from aigc.core.rng import parse_seeds
    from aigc.families.registry import generate, load_model, with_sample

    seeds = parse_seeds(args.seeds) if args.seeds else list(range(args.n if args.n is not None else 64))
    if args.n is not None and args.seeds and args.n != len(seeds):
        raise UserError(f"--n {args.n} but --seeds lists {len(seeds)} seeds; give one or make them agree")
    if not 1 <= len(seeds) <= MAX_IMAGES:
        raise UserError(f"--n {len(seeds)} out of range; draw between 1 and {MAX_IMAGES} images")
    if args.batch_size < 1:
        raise UserError("--batch-size must be positive")
    out = Path(args.out)
    per_seed = args.out.endswith(("/", os.sep)) or out.is_dir()
    if not per_seed and out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: name a .png file for a grid, or a directory ending in / for one PNG per seed")
    check_writable(out if per_seed else out.parent)

    device = resolve_device(args.device)
    model, config = load_model(args.model, device)
    sample = with_sample(config, given(args, "sample")).sample
    labels = None if args.class_label is None else [args.class_label] * len(seeds)
    images = generate(model, seeds, labels, sample, batch_size=args.batch_size, device=device, progress=True)
    if per_seed:
        save_per_seed(images, seeds, out)
        print(f"wrote {len(seeds)} images to {out}/ ({dataclasses.asdict(sample)})")
    else:
        save_grid(images, out)
        print(f"wrote a grid of {len(seeds)} images to {out} ({dataclasses.asdict(sample)})")
    return 0


def check_writable(directory: Path) -> None:
    """Fail before sampling, not after, when the output cannot be written."""
    from aigc.core.errors import UserError

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {directory} ({error.strerror}); choose a writable --out") from None
    if not os.access(directory, os.W_OK):
        raise UserError(f"{directory} is not writable; choose another --out")
