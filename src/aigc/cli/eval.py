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
  aigc eval runs/mnist --sampler dpmpp-2m --sampler ddpm       # compare: each setting, fid and fid_2 side by side
  aigc eval runs/a runs/b --n 2000                             # compare two runs
  aigc eval runs/c1 runs/c2 runs/c3 --ensemble --perturb typos-5   # classifiers as one: probabilities averaged
"""


def register(commands) -> None:
    from aigc.cli.options import add_command, add_options, add_sample_options
    from aigc.evaluation.evaluate import EvalConfig

    parser = add_command(commands, "eval", "score images or a language model against a data set", EXAMPLES)
    parser.add_argument(
        "source",
        nargs="+",
        help="run directory, checkpoint, folder of images, .npz, or real:NAME/SPLIT; several are compared",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--ensemble", action="store_true", help="classifiers: score the runs as one model (probabilities averaged)"
    )
    add_options(parser, EvalConfig, "eval")
    add_sample_options(parser, repeat=True)  # a sample flag given twice compares its values
    parser.set_defaults(run=run)


def run(args) -> int:
    import itertools
    import json
    import sys

    from aigc.cli.options import apply, given
    from aigc.core.distributed import is_main
    from aigc.evaluation.compare import compare
    from aigc.evaluation.evaluate import EvalConfig, evaluate

    config = apply(EvalConfig(), args, "eval")
    values = given(args, "sample")  # field -> the values given, in order
    settings = [dict(zip(values, chosen, strict=True)) for chosen in itertools.product(*values.values())]
    if args.ensemble:
        from aigc.evaluation.evaluate import evaluate_ensemble

        report = evaluate_ensemble(args.source, config)
        print(json.dumps(report) if args.json else format_splits(report))
        return 0
    if len(args.source) == 1 and len(settings) == 1:
        report = evaluate(args.source[0], config, sample_overrides=settings[0], progress=not args.json)
        if is_main():  # under torchrun every rank holds the same report
            print(json.dumps(report) if args.json else format_table(report))
        return 0
    comparison = compare(args.source, config, settings, progress=not args.json)
    if not is_main():
        return 0
    for line in comparison["disagreements"]:
        print(f"warning: the two feature spaces disagree: {line}; weigh precision and recall", file=sys.stderr)
    if args.json:
        print(json.dumps(comparison))
    else:
        print(format_comparison(comparison["results"]))
    return 0


COMPARED = ("fid", "fid_2", "kid", "kid_2", "precision", "recall", "precision_2", "recall_2")


def format_comparison(reports: list[dict]) -> str:
    """One row per compared report: its label and the figures that every report has (the --json output holds
    each whole report)."""
    columns = [key for key in COMPARED if all(key in r for r in reports)]
    coverage = all("coverage" in r for r in reports)
    header = ["", "n", *columns, *(["classes", "entropy"] if coverage else [])]
    rows = [header]
    for r in reports:
        row = [r["label"], str(r.get("n", "")), *(f"{r[key]:.4f}" for key in columns)]
        if coverage:
            row += [str(r["coverage"]["classes_present"]), f"{r['coverage']['normalized_entropy']:.4f}"]
        rows.append(row)
    widths = [max(len(row[k]) for row in rows) for k in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    names = {r["extractor"]["name"] for r in reports if "extractor" in r}
    names |= {r["extractor_2"]["name"] for r in reports if "extractor_2" in r}
    return "\n".join(lines + ([f"extractors: {', '.join(sorted(names))}"] if names else []))


def format_table(report: dict) -> str:
    if "splits" in report:
        return format_splits(report)
    rows = [("source", report.get("source", "")), ("reference", report["reference"])]
    rows += [(key, report[key]) for key in ("n", "completions", "tokens_scored", "context", "stride") if key in report]
    for key in ("val_loss", "bits_per_byte", "perplexity", "distinct_2"):
        if key in report:
            rows.append((key, f"{report[key]:.4f}" + (" nats/token" if key == "val_loss" else "")))
    if "max_copy_chars" in report:
        rows.append(("max_copy_chars", f"{report['max_copy_chars']} (longest span copied from the training text)"))
    for key in ("fid", "kid", "precision", "recall", "fid_2", "kid_2", "precision_2", "recall_2", "classifier_score"):
        if key in report:
            spread = f" ± {report[key.replace('kid', 'kid_std')]:.4f}" if key.startswith("kid") else ""
            rows.append((key, f"{report[key]:.4f}{spread}"))
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
    for key in ("extractor", "extractor_2"):
        if key in report:
            extractor = report[key]
            rows.append((key, f"{extractor['name']} sha256:{extractor['sha256'][:12]} (compare only like with like)"))
    rows.append(("seconds", report["seconds"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


SPLIT_COLUMNS = ("n", "accuracy", "macro_f1", "nll", "ece", "ece_uncalibrated", "texts_per_s")


def format_splits(report: dict) -> str:
    """A classifier's report: a row of metrics per split, then the test split's confusion matrix."""
    lines = [f"source       {report.get('source', 'ensemble')}", f"data         {report['data']}"]
    lines.append(f"labels       {', '.join(report['labels'])}")
    if "members" in report:
        lines.append(f"ensemble     {', '.join(report['members'])} (probabilities averaged)")
    else:
        lines.append(f"temperature  {report['temperature']:.4f}")
    rows = [["split", *SPLIT_COLUMNS]]
    scored = {**report["splits"], **{f"test, {name}": values for name, values in report.get("perturbed", {}).items()}}
    for split, values in scored.items():
        rows.append([split, *(f"{values[key]:.4f}" if key != "n" else str(values[key]) for key in SPLIT_COLUMNS)])
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    split = "test" if "test" in report["splits"] else next(iter(report["splits"]))
    lines.append(f"confusion ({split}; a row per true label, a column per predicted one):")
    width = max(map(len, report["labels"]))
    for label, counts in zip(report["labels"], report["splits"][split]["confusion"], strict=True):
        lines.append(f"  {label:<{width}}  " + " ".join(f"{count:>5}" for count in counts))
    return "\n".join(lines)
