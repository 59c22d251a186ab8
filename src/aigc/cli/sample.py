"""`aigc sample`: draw from a run or a checkpoint - images into a grid PNG or one PNG per seed, text streamed
to stdout or written to a .txt / .jsonl file - by what the model's family generates."""

from __future__ import annotations

import os
from pathlib import Path

EXAMPLES = """examples:
  aigc sample runs/mnist --n 64 --seeds 0-63 --out grid.png              # the run's sampler (guided: euler, 10 steps)
  aigc sample runs/mnist/checkpoints/004000.safetensors --n 1000 --out samples/   # one PNG per seed
  aigc sample runs/mnist --class 7 --guidance 2.0 --n 16 --out sevens.png
  aigc sample runs/mnist-gan --n 64 --truncation 0.8 --out grid.png       # a GAN: one pass, optional truncation
  aigc sample runs/shakespeare --prompt "ROMEO:" --max-tokens 500 --temperature 0.8 --top-k 200 --seed 0
  aigc sample runs/shakespeare --prompts-file prompts.txt --n 4 --stop "\\n\\n" --out completions.jsonl
  aigc sample runs/scenes --prompt "a large 5 at the top right" --guidance 3 --seeds 0-15 --out fives.png
  aigc sample sd-pipeline/ --prompt "a photo of a cat" --steps 25 --seeds 0-3 --out cats.png  # a diffusers dir
"""
MAX_IMAGES = 100_000
MAX_COMPLETIONS = 10_000


def register(commands) -> None:
    from aigc.cli.options import add_command, add_sample_options

    parser = add_command(commands, "sample", "draw images or text from a model", EXAMPLES)
    parser.add_argument(
        "model",
        type=Path,
        help="run directory (newest checkpoint), checkpoint .safetensors, or a Stable Diffusion directory (diffusers)",
    )
    parser.add_argument(
        "--n", "-n", type=int, help="images (default: 64, or as many as --seeds); text: completions per prompt"
    )
    parser.add_argument("--seeds", "--seed", help="seeds, e.g. 0-63 or 1,5,9 (default: 0..n-1)")
    parser.add_argument("--class", dest="class_label", type=int, help="draw only this class")
    parser.add_argument(
        "--prompt", action="append", help="a prompt to continue or draw (repeat for several: a grid row each)"
    )
    parser.add_argument("--prompts-file", type=Path, help="a file of prompts, one per line")
    parser.add_argument(
        "--stop", action="append", help="text: end a completion where this string begins (repeatable; \\n escapes)"
    )
    parser.add_argument(
        "--out",
        help="images: X.png (a grid, the default samples.png) or DIR/ (one PNG per seed); "
        "text: X.txt or X.jsonl (default: stream to stdout)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="images (completions) per forward pass")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    add_sample_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from aigc.cli.options import given
    from aigc.core.device import resolve_device
    from aigc.core.errors import UserError
    from aigc.core.rng import parse_seeds
    from aigc.families.registry import family_of, load_model, with_sample

    seeds = parse_seeds(args.seeds) if args.seeds else None
    if args.n is not None and seeds is not None and args.n != len(seeds):
        raise UserError(f"--n {args.n} but --seeds lists {len(seeds)} seeds; give one or make them agree")
    if args.batch_size < 1:
        raise UserError("--batch-size must be positive")
    device = resolve_device(args.device)
    model, config = load_model(args.model, device)
    family = family_of(config)
    settings = given(args, "sample")
    if args.stop:
        if family.modality != "text":
            raise UserError("--stop applies to language models; drop it")
        settings["stop"] = tuple(unescape(s) for s in args.stop)
    sample = with_sample(config, settings).sample
    return SAMPLERS[family.modality](args, family, model, sample, seeds, device)


def sample_images(args, family, model, sample, seeds, device) -> int:
    import dataclasses

    from aigc.core.errors import UserError
    from aigc.core.images import save_grid, save_per_seed

    prompted = bool(args.prompt or args.prompts_file)
    if family.conditions == "prompts":
        if not prompted:
            raise UserError("this model draws what a prompt says; give --prompt TEXT or --prompts-file FILE")
        if args.class_label is not None:
            raise UserError("--class applies to class-conditional models; this one takes a --prompt")
    elif prompted:
        raise UserError("--prompt and --prompts-file apply to models that take prompts; this one draws classes")
    default_n = 8 if prompted else 64
    seeds = seeds if seeds is not None else list(range(args.n if args.n is not None else default_n))
    prompts = read_prompts(args) if prompted else None
    per_prompt = f" for each of {len(prompts)} prompts" if prompts else ""
    if not 1 <= len(seeds) * len(prompts or [None]) <= MAX_IMAGES:
        raise UserError(f"--n {len(seeds)}{per_prompt} out of range; draw between 1 and {MAX_IMAGES} images in all")
    out = Path(args.out or "samples.png")
    per_seed = (args.out or "").endswith(("/", os.sep)) or out.is_dir()
    if not per_seed and out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: name a .png file for a grid, or a directory ending in / for one PNG per seed")
    check_writable(out if per_seed else out.parent)
    conditions = None if args.class_label is None else [args.class_label] * len(seeds)
    if prompts is not None:  # a row of the seeds' images per prompt
        conditions = [prompt for prompt in prompts for _ in seeds]
        if per_seed and len(prompts) > 1:
            raise UserError("one PNG per seed takes one prompt; give one --prompt, or --out X.png for a grid")
    columns = len(seeds) if prompts is not None and len(prompts) > 1 else None
    seeds = seeds * len(prompts or [None])
    images = family.generate(model, seeds, conditions, sample, batch_size=args.batch_size, device=device, progress=True)
    if per_seed:
        save_per_seed(images, seeds, out)
        print(f"wrote {len(seeds)} images to {out}/ ({dataclasses.asdict(sample)})")
    else:
        save_grid(images, out, columns)
        print(f"wrote a grid of {len(seeds)} images to {out} ({dataclasses.asdict(sample)})")
    return 0


def sample_text(args, family, model, sample, seeds, device) -> int:
    """Completions of each prompt, one per seed: streamed to stdout as they are drawn, or written to --out."""
    import dataclasses
    import json
    import sys

    from aigc.core.errors import UserError

    if args.class_label is not None:
        raise UserError("--class applies to class-conditional image models; give a --prompt instead")
    prompts = read_prompts(args)
    seeds = seeds if seeds is not None else list(range(args.n if args.n is not None else 1))
    jobs = [(prompt, seed) for prompt in prompts for seed in seeds]
    if not 1 <= len(jobs) <= MAX_COMPLETIONS:
        raise UserError(f"{len(jobs)} completions asked for; draw between 1 and {MAX_COMPLETIONS}")
    out = Path(args.out) if args.out else None
    if out is not None:
        if out.suffix not in (".txt", ".jsonl"):
            raise UserError(f"--out {out}: name a .txt or .jsonl file (or leave --out out to stream to stdout)")
        check_writable(out.parent)
    family.check_request(model, prompts, sample)  # every prompt checked before any output
    job_prompts, job_seeds = [p for p, _ in jobs], [s for _, s in jobs]
    if out is None:  # one completion at a time, each shown as it grows
        for prompt, seed in jobs:
            if len(jobs) > 1:
                print(f"--- seed {seed} ---", flush=True)
            sys.stdout.write(prompt)
            family.generate(
                model,
                [seed],
                [prompt],
                sample,
                device=device,
                on_text=lambda k, text: (sys.stdout.write(text), sys.stdout.flush()),
            )
            print(flush=True)
        return 0
    drawn = family.generate(model, job_seeds, job_prompts, sample, batch_size=args.batch_size, device=device)
    texts = [completion.text for completion in drawn]
    settings = dataclasses.asdict(sample)
    if out.suffix == ".jsonl":
        lines = [
            json.dumps({"prompt": p, "seed": s, "completion": t, "settings": settings})
            for p, s, t in zip(job_prompts, job_seeds, texts, strict=True)
        ]
        out.write_text("\n".join(lines) + "\n")
    else:
        blocks = [p + t for p, t in zip(job_prompts, texts, strict=True)]
        out.write_text("\n\n".join(blocks) + "\n")
    print(f"wrote {len(texts)} completion(s) to {out} ({settings})")
    return 0


def read_prompts(args) -> list[str]:
    """The prompts of --prompt and --prompts-file (its non-empty lines), in that order; a newline when none."""
    from aigc.core.errors import UserError

    prompts = [unescape(p) for p in args.prompt or []]
    if args.prompts_file:
        try:
            lines = args.prompts_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"--prompts-file {args.prompts_file}: unreadable ({error})") from None
        prompts += [unescape(line) for line in lines if line.strip()]
        if not prompts:
            raise UserError(f"--prompts-file {args.prompts_file} holds no prompt; write one per line")
    return prompts or ["\n"]


def unescape(text: str) -> str:
    r"""`\n` and `\t` typed on a command line (or a prompts file) as the characters they name."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def sample_labels(args, family, model, sample, seeds, device) -> int:
    from aigc.core.errors import UserError

    raise UserError(
        f"{args.model} labels texts rather than drawing outputs; use aigc classify {args.model} --text TEXT"
    )


SAMPLERS = {"images": sample_images, "text": sample_text, "labels": sample_labels}


def check_writable(directory: Path) -> None:
    """Fail before sampling, not after, when the output cannot be written."""
    from aigc.core.errors import UserError

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {directory} ({error.strerror}); choose a writable --out") from None
    if not os.access(directory, os.W_OK):
        raise UserError(f"{directory} is not writable; choose another --out")
