"""`aigc eval`: score a model, a folder / .npz of images, or a real split against a reference split; a
language model by its validation loss and its completions."""

from __future__ import annotations

EXAMPLES = """examples:
  aigc eval runs/mnist --data mnist --n 10000                 # generate with the EMA model, score vs the test split
  aigc eval samples/ --data mnist                              # a folder (or .npz) of images made by anything
  aigc eval runs/mnist --metrics fid,kid,pr,coverage --sampler heun --steps 18 --json
  aigc eval real:mnist/train --data mnist                      # real vs real: the floor of each metric
  aigc eval runs/shakespeare --data shakespeare --json         # validation loss, bits per byte, memorisation
  aigc eval runs/scenes --n 500 --guidance 3                   # text-to-image: prompt adherence and FID
"""


def register(commands) -> None:
    from aigc.cli.options import add_command, add_options, add_sample_options
    from aigc.evaluation.evaluate import EvalConfig

    parser = add_command(commands, "eval", "score images or a language model against a data set", EXAMPLES)
    parser.add_argument("source", help="run directory, checkpoint, folder of images, .npz, or real:NAME/SPLIT")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_options(parser, EvalConfig, "eval")
    add_sample_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    import json

    from aigc.cli.options import apply, given
    from aigc.core.distributed import is_main
    from aigc.evaluation.evaluate import EvalConfig, evaluate

    config = apply(EvalConfig(), args, "eval")
    report = evaluate(args.source, config, sample_overrides=given(args, "sample"), progress=not args.json)
    if not is_main():  # under torchrun every rank holds the same report
        return 0
    if args.json:
        print(json.dumps(report))
    else:
        print(format_table(report))
    return 0


def format_table(report: dict) -> str:
    rows = [("source", report.get("source", "")), ("reference", report["reference"])]
    rows += [(key, report[key]) for key in ("n", "completions", "tokens_scored", "context", "stride") if key in report]
    for key in ("val_loss", "bits_per_byte", "perplexity", "distinct_2"):
        if key in report:
            rows.append((key, f"{report[key]:.4f}" + (" nats/token" if key == "val_loss" else "")))
    if "max_copy_chars" in report:
        rows.append(("max_copy_chars", f"{report['max_copy_chars']} (longest span copied from the training text)"))
    for key in ("fid", "kid", "precision", "recall", "classifier_score"):
        if key in report:
            value = f"{report[key]:.4f}" + (f" ± {report['kid_std']:.4f}" if key == "kid" else "")
            rows.append((key, value))
    if "coverage" in report:
        c = report["coverage"]
        rows.append(("classes present", f"{c['classes_present']} / {len(c['histogram'])}"))
        rows.append(("class entropy", f"{c['normalized_entropy']:.4f} (1 = uniform)"))
        rows.append(("mean confidence", f"{c['mean_confidence']:.4f}"))
        rows.append(("class histogram", " ".join(map(str, c["histogram"]))))
    for split, judged in report.get("adherence", {}).items():
        real = report["adherence_real"][split]
        parts = ", ".join(f"{k} {judged[k]:.3f}" for k in ("class", "place", "size"))
        rows.append((f"adherence ({split})", f"{judged['all']:.3f} ({parts}; real scenes {real['all']:.3f})"))
    if "sampling" in report:
        rows.append(("sampling", ", ".join(f"{k}={v}" for k, v in report["sampling"].items())))
    if "extractor" in report:
        extractor = report["extractor"]
        rows.append(
            ("extractor", f"{extractor['name']} sha256:{extractor['sha256'][:12]} (compare only like with like)")
        )
    rows.append(("seconds", report["seconds"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
