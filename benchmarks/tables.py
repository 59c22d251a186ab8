"""The tables of docs/benchmarks.md, and the README's headline table, written from the committed results
(benchmarks/results/*.json), never by hand:

  python benchmarks/tables.py           # rewrite every table block of docs/benchmarks.md and README.md
  python benchmarks/tables.py --check   # only say which blocks differ from the results (exit status 1)

A table block is everything between `<!-- table: NAME -->` and `<!-- end table -->`; the prose around it stays
hand-written. Each `TABLES[NAME]` is a pure function from the results (a dict of every results file, keyed by
its name without `.json`) to the block's markdown, so tests/test_benchmark_tables.py can check, without running
any benchmark, that the pages hold exactly what the committed results give, and a page cannot drift from its
numbers. After a benchmark run (`benchmarks/run.py` says so when it ends), rerun this script and read the prose
around each changed table again: it is not rewritten. Tables of probe runs whose numbers are in no results file
stay hand-written in the page, outside any block, with a comment naming the command that made them.

Numbers are rounded from the stored values, decimal ties as each table was first published (`halves`): most to
even (2.605 -> 2.60), the sampling and throughput tables up (66.5 -> 67)."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).parents[1]
PAGES = (
    ROOT / "docs" / "benchmarks.md",
    ROOT / "README.md",
    ROOT / "docs" / "customer-service.md",
    ROOT / "docs" / "recommendation.md",
)
BLOCK = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end table -->)", re.DOTALL)

Results = Mapping[str, dict]


def load_results(directory: Path = RESULTS) -> dict[str, dict]:
    """Every results file of `directory` (not its sub-folders), by name without `.json`."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


# ---- numbers as the tables print them -------------------------------------------------------------------------


def fixed(value: float, digits: int, halves: str = "even") -> str:
    """`value` with `digits` decimals, rounded from its shortest decimal form (what the results file stores)."""
    mode = ROUND_HALF_UP if halves == "up" else ROUND_HALF_EVEN
    return str(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits), rounding=mode))


def whole(value: float, halves: str = "even") -> str:
    return fixed(value, 0, halves)


def thousands(value: float, halves: str = "even") -> str:
    return f"{int(fixed(value, 0, halves)):,}"


def kimg(value: float) -> str:
    """Thousands of images, as "325 k"."""
    return f"{whole(value)} k"


def kilo(value: float) -> str:
    """Tokens a second, as "14.6k"."""
    return f"{fixed(value / 1000, 1)}k"


def mega(value: float, space: str = "") -> str:
    """Tokens, as "2.62M" (or "2.62 M")."""
    return f"{fixed(value / 1e6, 2)}{space}M"


def bold(text: str, on: bool = True) -> str:
    return f"**{text}**" if on else text


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def pair(first: str, second: str) -> str:
    return f"{first} / {second}"


# ---- diffusion and GANs on MNIST -----------------------------------------------------------------------------

TTQ_LABELS = {
    "aigc": "**aigc** (default, class-conditional)",
    "aigc-unconditional": "aigc, `--no-class-conditional`",
    "diffusers-default": "diffusers (a), defaults",
    "diffusers-tuned": "diffusers (b), tuned",
}


def ratio_to_reference(ratio: float) -> str:
    """A FID as a share of the tuned reference's: "0.0076 (1/132)", "0.218 (1/4.6)", "6.6", "1"."""
    if ratio == 1:
        return "1"
    if ratio > 1:
        return f"{ratio:.2g}"
    inverse = 1 / ratio
    return f"{ratio:.3g} (1/{whole(inverse) if inverse >= 10 else fixed(inverse, 1)})"


def rate(value: float) -> str:
    """Images a second: whole from 10 up, one decimal below."""
    return whole(value) if value >= 10 else fixed(value, 1)


def time_to_quality(results: Results) -> str:
    rows = []
    for row in results["time_to_quality"]["rows"]:
        default = row["name"] == "aigc"
        rows.append(
            [
                TTQ_LABELS[row["name"]],
                kimg(row["kimg"]),
                whole(row["img_per_s"]),
                bold(fixed(row["fid"], 2), default),
                bold(ratio_to_reference(row["fid_ratio_to_tuned_reference"]), default),
                fixed(row["fid_2"], 2),
                f"{row['kid']:.3g}",
                fixed(row["precision"], 2),
                fixed(row["recall"], 2),
                str(row["classes_present"]),
                fixed(row["class_entropy"], 3),
                rate(row["sample_img_per_s"]),
            ]
        )
    header = ["run", "images seen", "train img/s", "FID", "FID / (b)", "fid_2", "KID", "precision", "recall"]
    return table(header + ["classes", "class entropy", "sampling img/s"], rows)


def sampling(results: Results) -> str:
    """FID / fid_2 against NFE per sampler; "at 10" is each sampler's second budget (Heun's 9 NFE)."""
    data = results["sampling"]
    samplers = list(dict.fromkeys(row["sampler"] for row in data["rows"]))
    by_sampler = {s: [row for row in data["rows"] if row["sampler"] == s] for s in samplers}
    columns = [row["nfe"] for row in by_sampler[data["default_sampler"]]]
    rows = []
    for sampler in samplers:
        points = by_sampler[sampler]
        ten = points[1]
        label = f"`{sampler}`"
        if sampler == data["default_sampler"]:
            label += f" (**default**, {ten['steps']} steps)"
        speed = whole(ten["img_per_s"], "up") + ("" if ten["nfe"] == 10 else f" ({ten['nfe']} NFE)")
        cells = [pair(fixed(p["fid"], 2, "up"), fixed(p["fid_2"], 2, "up")) for p in points]
        rows.append([label, *cells, pair(fixed(ten["precision"], 2, "up"), fixed(ten["recall"], 2, "up")), speed])
    header = ["sampler", *map(str, columns), "precision / recall at 10", "images/s at 10 NFE"]
    return table(header, rows)


QUALITY_LABELS = {
    "diffusion": "diffusion default, 10 min (wsd, guidance 1.5, euler 10 steps)",
    "gan": "GAN default (`conditional`), 10 min",
    "gan-half": "GAN default (`conditional`), 5 min",
}
# the cells the first edition of the table set in bold: each default's headline FID, and the GAN's ratio
QUALITY_BOLD = {("diffusion", "fid"), ("diffusion", "fid_2"), ("gan", "fid"), ("gan", "fid_ratio_to_diffusion")}


def ratio(value: float) -> str:
    return "1" if value == 1 else fixed(value, 2)


def image_quality(results: Results) -> str:
    rows = []
    for row in results["image_quality"]["rows"]:
        name = row["name"]
        rows.append(
            [
                QUALITY_LABELS[name],
                kimg(row["kimg"]),
                whole(row["img_per_s"]),
                bold(fixed(row["fid"], 2), (name, "fid") in QUALITY_BOLD),
                bold(ratio(row["fid_ratio_to_diffusion"]), (name, "fid_ratio_to_diffusion") in QUALITY_BOLD),
                bold(fixed(row["fid_2"], 2), (name, "fid_2") in QUALITY_BOLD),
                ratio(row["fid_2_ratio_to_diffusion"]),
                *(fixed(row[k], 2) for k in ("precision", "recall", "precision_2", "recall_2")),
                fixed(row["class_entropy"], 3),
            ]
        )
    header = ["run", "images seen", "train img/s", "fid", "fid / diffusion's", "fid_2", "fid_2 / diffusion's"]
    return table(header + ["precision", "recall", "precision_2", "recall_2", "class entropy"], rows)


def quality_nfe(results: Results) -> str:
    points = results["image_quality"]["nfe"]
    rows = [
        ["fid", *(fixed(p["fid"], 2) for p in points)],
        ["fid_2", *(fixed(p["fid_2"], 2) for p in points)],
        ["precision / recall", *(pair(fixed(p["precision"], 2), fixed(p["recall"], 2)) for p in points)],
    ]
    return table(["NFE", *(str(p["nfe"]) for p in points)], rows)


def quality_samplers(results: Results) -> str:
    rows = []
    for k, row in enumerate(results["image_quality"]["samplers"]):
        default = k == 0  # the run's own sampler, which the table's first row is
        rows.append(
            [
                f"`{row['sampler']}`" + (" (**default**)" if default else ""),
                bold(fixed(row["fid"], 2), default),
                bold(fixed(row["fid_2"], 2), default),
                *(fixed(row[k], 2) for k in ("precision", "recall", "precision_2", "recall_2")),
            ]
        )
    steps = results["image_quality"]["samplers"][0]["steps"]
    header = [f"sampler, {steps} steps", "fid", "fid_2", "precision", "recall", "precision_2", "recall_2"]
    return table(header, rows)


GAN_LABELS = {
    "seed": "`seed` (MLP, BCE)",
    "dcgan": "`dcgan`",
    "stable": "`stable`",
    "conditional": "`conditional` (**the default**)",
}


def gan_recipes(results: Results) -> str:
    rows = []
    for row in results["gan"]["rows"]:
        default = row["recipe"] == "conditional"
        rows.append(
            [
                GAN_LABELS[row["recipe"]],
                kimg(row["kimg"]),
                whole(row["img_per_s"]),
                bold(fixed(row["fid"], 2), default),
                bold(fixed(row["fid_2"], 2), default),
                fixed(row["kid"], 3),
                fixed(row["precision"], 2),
                fixed(row["recall"], 2),
                str(row["classes_present"]),
                fixed(row["class_entropy"], 3),
            ]
        )
    header = ["recipe", "images seen", "img/s", "FID", "fid_2", "KID", "precision", "recall", "classes"]
    return table(header + ["class entropy"], rows)


# ---- speed ---------------------------------------------------------------------------------------------------

THROUGHPUT_LABELS = {
    ("fp32", "contiguous", False): "fp32",
    ("fp32", "channels_last", False): "fp32 channels-last (the default before bf16)",
    ("bf16", "contiguous", False): "bf16 autocast (**default** on CPUs with AVX512-BF16 or AMX)",
    ("bf16", "channels_last", False): "bf16 channels-last",
    ("fp32", "contiguous", True): "fp32 + `torch.compile`",
    ("bf16", "contiguous", True): "bf16 + `torch.compile`",
}


def throughput(results: Results) -> str:
    rows = results["throughput"]["rows"]

    def key(row: dict) -> tuple:
        return row["precision"], row["memory_format"], row["compiled"]

    s28 = {key(row): row for row in rows if row["preset"] == "s28"}
    out = []
    for row in (row for row in rows if row["preset"] == "s16"):
        other = s28[key(row)]
        out.append(
            [
                THROUGHPUT_LABELS[key(row)],
                whole(row["img_per_s"], "up"),
                fixed(row["ratio_to_fp32_contiguous"], 2, "up"),
                whole(other["img_per_s"], "up"),
                fixed(other["ratio_to_fp32_contiguous"], 2, "up"),
                whole(other["gflop_per_s"], "up"),
                f"{whole(100 * other['share_of_bf16_conv_peak'], 'up')}%",
            ]
        )
    header = ["setting", "s16: img/s", "ratio", "s28: img/s", "ratio", "s28: GFLOP/s"]
    return table(header + ["s28: share of the bf16 conv peak"], out)


def scaling(results: Results) -> str:
    rows = results["scaling"]["rows"]
    batches = list(dict.fromkeys(row["batch"] for row in rows))
    sizes = list(dict.fromkeys((row["size"], row["preset"]) for row in rows))
    speed = {(row["size"], row["batch"]): row["img_per_s"] for row in rows}
    out = [[f"{size} (`{preset}`)", *(whole(speed[size, b]) for b in batches)] for size, preset in sizes]
    return table(["image size (preset)", *(f"batch {b}" for b in batches)], out)


def text_decoding(results: Results) -> str:
    rows = [
        [
            str(row["tokens"]),
            fixed(row["ms_per_token_cache"], 2),
            fixed(row["ms_per_token_no_cache"], 2),
            f"{fixed(row['speedup'], 1)}x",
            fixed(row["ms_per_token_engine"], 2),
        ]
        for row in results["text_decoding"]["rows"]
    ]
    header = ["generated tokens", "ms/token with the cache", "ms/token recomputing", "speed-up", "ms/token, the engine"]
    batch = results["text_decoding"]["static_batch"]
    batch_row = [
        f"{batch['completions']} x {batch['tokens_each']}",
        whole(batch["tokens_per_s_baseline"]),
        whole(batch["tokens_per_s_engine"]),
        f"{fixed(batch['ratio'], 2)}x",
    ]
    static = ["completions x tokens", "tokens/s, the decoder before", "tokens/s, the engine", "engine / before"]
    return table(header, rows) + "\n" + table(static, [batch_row])


# ---- services ------------------------------------------------------------------------------------------------

SERVING_LABELS = {
    "merged": "merging (default)",
    "one_request_per_call": "one request per call",
    "overload": "64 clients, queue 16",
}


def serving(results: Results) -> str:
    rows = []
    for name, row in results["serving"]["rows"].items():
        replies = ", ".join(f"{count} x {status}" for status, count in row["statuses"].items())
        rows.append(
            [
                SERVING_LABELS[name],
                replies,
                f"{whole(row['p50_ms'])} ms",
                f"{whole(row['p99_ms'])} ms",
                fixed(row["requests_per_s"], 1),
                fixed(row["images_per_s"], 1),
                fixed(row["requests_per_generate_call"], 1),
            ]
        )
    header = ["setting", "replies", "p50", "p99", "requests/s", "images/s", "requests per generate()"]
    return table(header, rows)


SERVING_LM_LABELS = {
    "continuous": "continuous batching (`--max-batch 64`)",
    "one_at_a_time": "one completion at a time (`--max-batch 1`)",
    "overload": "overload: `--max-batch 16 --queue-size 16`",
}


def serving_lm(results: Results) -> str:
    rows = []
    for name, row in results["serving_lm"]["rows"].items():
        if name == "long_prompts":  # its own table, serving_lm_long
            continue
        answers = ", ".join(f"{status}: {count}" for status, count in row["statuses"].items())
        rows.append(
            [
                SERVING_LM_LABELS[name.rsplit("_", 1)[0] if name != "overload" else name],
                str(row["concurrency"]),
                str(row["requests"]),
                answers,
                whole(row["tokens_per_s"]),
                pair(whole(row["first_token_p50_ms"]), whole(row["first_token_p99_ms"])),
                pair(fixed(row["per_token_p50_ms"], 1), fixed(row["per_token_p99_ms"], 1)),
            ]
        )
    header = ["setting", "clients", "requests", "answers", "tokens/s", "first token p50 / p99 ms"]
    return table(header + ["per token p50 / p99 ms"], rows)


def serving_lm_long(results: Results) -> str:
    """16 running streams when 8 prompts of the model's whole context arrive: how long the streams stall."""
    row = results["serving_lm"]["rows"]["long_prompts"]
    header = [
        "largest gap / median gap (worst stream)",
        "largest gap ms",
        "median gap ms",
        "new prompts' first token ms",
    ]
    cells = [fixed(row["max_gap_over_median_worst"], 2), fixed(row["max_gap_ms"], 1), fixed(row["median_gap_ms"], 1)]
    return table(header, [cells + [whole(row["long_first_token_p50_ms"])]])


SERVING_LM_ENGINES = {"before": "before the engine (608b31b)", "engine": "the engine"}


def serving_lm_engine(results: Results) -> str:
    """The same service benchmark by the decode loop before the engine and by the engine, same model and machine."""
    runs = results["serving_lm_engine"]["runs"]
    rows = []
    for name, run in runs.items():
        engine, tokens = name.rsplit("_", 1)
        rows.append(
            [
                SERVING_LM_ENGINES[engine],
                tokens,
                f"{fixed(run['speedup_16'], 2)}x / {fixed(run['speedup_64'], 2)}x",
                whole(run["tokens_per_s_64"]),
                f"{fixed(run['per_token_p50_ms_64'], 1)} / {fixed(run['per_token_p50_ms_alone'], 1)} = "
                f"{fixed(run['per_token_over_alone_64'], 2)}x",
                whole(run["first_token_p99_ms_16"]),
            ]
        )
    long = results["serving_lm_engine"]["long_prompts"]
    header = ["code", "tokens a completion", "tokens/s over one at a time, 16 / 64 clients", "tokens/s at 64"]
    header += ["per token p50 ms at 64 / alone", "first token p99 ms at 16"]
    gaps = [
        [SERVING_LM_ENGINES[name], fixed(row["max_gap_over_median_worst"], 2), fixed(row["max_gap_ms"], 1)]
        for name, row in long.items()
    ]
    return table(header, rows) + "\n" + table(["code", "largest gap / median gap", "largest gap ms"], gaps)


# ---- compression ---------------------------------------------------------------------------------------------

COMPRESSION_LABELS = {
    "bench-ttq-aigc": "diffusion (s28 U-Net, guided, euler 10)",
    "bench-gan-seed": "seed GAN (MLP)",
    "bench-gan-conditional": "conditional GAN (the default)",
}


def change(fid_ratio: float) -> str:
    """The FID change in percent: "+48.6%", "-2.7%", "0.0%", "+2678%"."""
    percent = 100 * (fid_ratio - 1)
    text = whole(abs(percent)) if abs(percent) >= 1000 else fixed(abs(percent), 1)
    return ("+" if percent > 0 else "-" if percent < 0 else "") + text + "%"


def compression(results: Results) -> str:
    rows = []
    for model in results["compression"]["models"]:
        for k, row in enumerate(model["rows"]):
            original = row["option"] == "original"
            rows.append(
                [
                    COMPRESSION_LABELS[model["model"]] if k == 0 else "",
                    row["option"],
                    f"{fixed(row['mib'], 2)} ({fixed(row['size_ratio'], 2)}x)",
                    f"{thousands(row['img_per_s'])} ({fixed(row['speed_ratio'], 2)}x)",
                    fixed(row["fid"], 2),
                    "—" if original else change(row["fid_ratio"]),
                    fixed(row["fid_2"], 2),
                    fixed(row["recall"], 2),
                    "—" if original else ("yes" if row["fid_within_5pct"] else "no"),
                ]
            )
    header = ["model", "option", "EMA MiB", "sampling img/s", "FID", "FID change", "fid_2", "recall", "within 5%"]
    return table(header, rows)


# ---- language models -----------------------------------------------------------------------------------------


def power_of_ten(value: float) -> str:
    """A learning rate as "4e-3"."""
    mantissa, exponent = f"{value:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def bits_per_byte(nats_per_char: float) -> float:
    """Tiny Shakespeare is ASCII: one byte per character."""
    return nats_per_char / math.log(2)


def language_model(results: Results) -> str:
    """aigc against nanoGPT's CPU recipe. The "model" and "training" rows describe the two recipes (the reference's
    is fixed by benchmarks/reference_nanogpt.py); aigc's 0.81 M parameters are stated, not in the results file."""
    data = results["language_model"]
    ref, aigc = data["reference"], data["aigc"]
    ref_seconds = ref["train_seconds"]
    aigc_seconds = data["curves"]["aigc"][-1]["train_seconds"]
    over = 100 * (ref_seconds / (60 * data["minutes"]) - 1)
    config = data["aigc_config"]
    model, train = config["model"], config["train"]
    rows = [
        [
            "model",
            f"GPT-2 style, 4 layers, width 128, context 64, {fixed(ref['parameters'] / 1e6, 2)} M parameters",
            f"Llama style (RMSNorm, rotary, SwiGLU), {model['layers']} layers, width {model['width']}, context "
            f"{model['context']}, 0.81 M parameters",
        ],
        [
            "training",
            "AdamW 1e-3, weight decay 0.1, batch 12, 100 warm-up iterations, cosine to 1e-4 over "
            f"{ref['iterations']:,} iterations",
            f"Muon + AdamW {power_of_ten(train['lr'])}, weight decay {train['weight_decay']:g}, "
            f"batch {train['batch']}, "
            f"{int(train['warmup']) // 1000}k warm-up tokens, {train['lr_schedule']} (decay over the last "
            f"{whole(100 * train['decay'])}%)",
        ],
        [
            "time trained",
            f"{fixed(ref_seconds, 1)} s (iterations fitted to {data['minutes']:g} minutes by timing the first 200; "
            f"{fixed(over, 1)}% over)",
            f"{fixed(aigc_seconds, 1)} s",
        ],
        [
            "tokens seen, tokens/s",
            f"{fixed(ref['tokens_per_s'] * ref_seconds / 1e6, 1)} M, {kilo(ref['tokens_per_s'])}/s",
            f"{fixed(aigc['tokens'] / 1e6, 1)} M, {kilo(aigc['tokens_per_s'])}/s",
        ],
        [
            "final training loss",
            fixed(data["curves"]["reference"][-1]["loss"], 3),
            fixed(data["curves"]["aigc"][-1]["loss"], 3),
        ],
        [
            "**validation loss, nats/char** (whole split, stride = context)",
            bold(fixed(ref["val_loss"], 3)),
            bold(fixed(aigc["val_loss"], 3)),
        ],
        ["bits per byte", fixed(bits_per_byte(ref["val_loss"]), 3), fixed(aigc["bits_per_byte"], 3)],
        ["peak RSS", f"{ref['peak_rss_mib']} MiB", f"{aigc['peak_rss_mib']} MiB"],
    ]
    minutes = f"{data['minutes']:g}"
    header = ["", "reference: nanoGPT's CPU recipe", f"aigc: `aigc train lm --data shakespeare --minutes {minutes}`"]
    return table(header, rows)


def language_model_samples(results: Results) -> str:
    """The two models' completions of the same prompt and seed, side by side."""
    samples = results["language_model"]["samples"]
    return (
        f"<table><tr><th>reference</th><th>aigc</th></tr><tr><td><pre>\n{samples['reference']}\n</pre></td><td><pre>"
        f"\n{samples['aigc']}\n</pre></td></tr></table>\n"
    )


def recipe_round(name: str) -> Callable[[Results], str]:
    def render(results: Results) -> str:
        data = results[name]
        minutes = f"{data['minutes']:g}"
        rows = [
            [
                row["variant"],
                f"`{row['flags'] or '(none)'}`",
                fixed(row["val_loss"], 3),
                fixed(row["bits_per_byte"], 3),
                kilo(row["tokens_per_s"]),
                mega(row["tokens"]),
                str(row["peak_rss_mib"]),
            ]
            for row in data["rows"]
        ]
        header = ["variant", "flags", "val loss (nats/char)", "bits/byte", "tokens/s", f"tokens in {minutes} min"]
        return table(header + ["peak RSS MiB"], rows)

    render.__name__ = name
    render.__doc__ = f"The language-model recipe variants of benchmarks/results/{name}.json."
    return render


ROUND3_LABELS = {
    "weight decay 0.1": "weight decay 0.1 (the old default)",
    "weight decay 0.5": "**weight decay 0.5**",
    "weight decay 1.0": "weight decay 1.0",
    "weight decay 0.1, final lr 0, decay 0.5": "final lr 0 over the last half",
}
ROUND3_CHOSEN = "weight decay 0.5"


def lm_recipes_tokens(results: Results) -> str:
    before_decay = 7_000_064  # the last in-loop evaluation before the decay (the last 30% of 8.9 M tokens)
    rows = []
    for row in results["lm_recipes_tokens"]["rows"]:
        chosen = row["variant"] == ROUND3_CHOSEN
        in_loop = dict((tokens, loss) for tokens, loss in row["in_loop_val_loss"])
        rows.append(
            [
                ROUND3_LABELS[row["variant"]],
                f"`{row['flags']}`",
                bold(fixed(row["val_loss"], 3), chosen),
                bold(fixed(row["bits_per_byte"], 3), chosen),
                fixed(row["final_train_loss"], 3),
                fixed(in_loop[before_decay], 3),
            ]
        )
    header = ["variant", "flags", "val loss (nats/char)", "bits/byte", "final training loss"]
    return table(header + [f"in-loop val loss at {fixed(before_decay / 1e6, 1)} M tokens, before the decay"], rows)


def finetune(results: Results) -> str:
    data = results["finetune"]
    minutes = f"{data['minutes']:g}"
    rows = [
        [
            row["variant"],
            f"`{row['flags']}`",
            row["trainable"],
            kilo(row["tokens_per_s"]),
            mega(row["tokens"], " "),
            str(row["peak_rss_mib"]),
            fixed(data["val_loss_before"], 2),
            bold(fixed(row["val_loss_after"], 2)),
        ]
        for row in data["rows"]
    ]
    header = ["variant", "flags", "trainable parameters", "tokens/s", f"tokens in {minutes} min", "peak RSS MiB"]
    return table(header + ["val loss before", "val loss after"], rows)


# ---- text to image -------------------------------------------------------------------------------------------

T2I_DEFAULT_GUIDANCE = "3"  # text2image's default guidance (families/text2image/config.py)


def t2i_run(row: dict) -> str:
    return f"{row['minutes']:g} min, {row['variant']}"


def adherence_cells(test: dict, heldout: dict) -> list[str]:
    return [fixed(part[k], 3) for part in (test, heldout) for k in ("all", "class", "place", "size")]


def text2image(results: Results) -> str:
    rows = []
    data = results["text2image"]
    for row in data["rows"]:
        for guidance, scores in row["by_guidance"].items():
            label = guidance + (" (default)" if guidance == T2I_DEFAULT_GUIDANCE else "")
            cells = adherence_cells(scores["adherence_test"], scores["adherence_heldout"])
            rows.append([t2i_run(row), label, *cells, fixed(scores["fid"], 2)])
    real = data["rows"][0]["adherence_real"]
    rows.append(["real scenes (the judge's ceiling)", "", *adherence_cells(real["test"], real["heldout"]), ""])
    header = ["run", "guidance", "test: all right", "class", "place", "size", "held-out: all right", "class"]
    return table(header + ["place", "size", "FID"], rows)


def text2image_runs(results: Results) -> str:
    def optional(value: float | None, render: Callable[[float], str]) -> str:
        return "-" if value is None else render(value)

    rows = [
        [
            t2i_run(row),
            fixed(row["kimg"], 1),
            whole(row["denoiser_img_per_s"]),
            optional(row["autoencoder_img_per_s"], whole),
            optional(row["autoencoder_reconstruction_mse"], lambda v: fixed(v, 4)),
            fixed(row["sampling_img_per_s"], 1),
            str(row["peak_rss_mib"]),
        ]
        for row in results["text2image"]["rows"]
    ]
    header = ["run", "kimg", "denoiser img/s", "autoencoder img/s", "AE MSE", "sampling img/s", "peak RSS MiB"]
    return table(header, rows)


# ---- the README's headline -----------------------------------------------------------------------------------

PAGE = "docs/benchmarks.md"


def headline(results: Results) -> str:
    """A handful of rows, each the strongest honest number of a table and a link to the whole table."""
    ttq = {row["name"]: row for row in results["time_to_quality"]["rows"]}
    quality = {row["name"]: row for row in results["image_quality"]["rows"]}
    lm = results["language_model"]
    t2i = next(r for r in results["text2image"]["rows"] if r["variant"] == "latent" and r["minutes"] == 30)
    t2i_scores = t2i["by_guidance"][T2I_DEFAULT_GUIDANCE]
    serve = results["serving"]["rows"]
    serve_lm = results["serving_lm"]["rows"]
    rows = [
        [
            f"diffusion on MNIST, {results['time_to_quality']['minutes']:g} minutes of training: FID "
            f"(n = {results['time_to_quality']['n']:,}, lower is better)",
            f"**{fixed(ttq['aigc']['fid'], 2)}** (class-conditional, the default); "
            f"{fixed(ttq['aigc-unconditional']['fid'], 2)} without labels",
            f"diffusers' training example, tuned for short runs: {fixed(ttq['diffusers-tuned']['fid'], 2)}",
            link("time to quality", "time-to-quality-aigc-against-diffusers"),
        ],
        [
            f"the GAN default against the diffusion default, {results['image_quality']['minutes']:g} minutes each: "
            f"fid / fid_2 (n = {results['image_quality']['n']:,})",
            f"GAN **{pair(fixed(quality['gan']['fid'], 2), fixed(quality['gan']['fid_2'], 2))}**",
            f"diffusion {pair(fixed(quality['diffusion']['fid'], 2), fixed(quality['diffusion']['fid_2'], 2))}",
            link("image quality", "image-quality-the-diffusion-and-gan-defaults"),
        ],
        [
            f"a character-level language model on tiny Shakespeare, {lm['minutes']:g} minutes: validation loss "
            "(nats/char)",
            f"**{fixed(lm['aigc']['val_loss'], 3)}**",
            f"nanoGPT's CPU recipe, the same machine and time: {fixed(lm['reference']['val_loss'], 3)}",
            link("language models", "language-models-aigc-against-nanogpt"),
        ],
        [
            f"text to image on MNIST scenes, {t2i['minutes']:g} minutes: images with every object right, test / "
            "held-out combinations",
            bold(pair(fixed(t2i_scores["adherence_test"]["all"], 3), fixed(t2i_scores["adherence_heldout"]["all"], 3))),
            "the judge on the real scenes: "
            + pair(fixed(t2i["adherence_real"]["test"]["all"], 3), fixed(t2i["adherence_real"]["heldout"]["all"], 3)),
            link("text to image", "text-to-image"),
        ],
        [
            f"`aigc serve`, images/s under {serve['merged']['concurrency']} clients",
            f"**{fixed(serve['merged']['images_per_s'], 1)}** (requests merged)",
            f"one request per generate() call: {fixed(serve['one_request_per_call']['images_per_s'], 1)}",
            link("the image service", "the-image-service-under-load"),
        ],
        [
            f"`aigc serve`, tokens/s under {serve_lm['continuous_64']['concurrency']} streaming clients",
            f"**{whole(serve_lm['continuous_64']['tokens_per_s'])}** (continuous batching)",
            f"one completion at a time: {whole(serve_lm['one_at_a_time_64']['tokens_per_s'])}",
            link("the language-model service", "the-language-model-service-under-load"),
        ],
        sentiment_headline(results["sentiment"]),
        assistant_headline(results["assistant"]),
        *([recommender_headline(results["recommender"])] if "recommender" in results else []),
    ]
    return table(["measured (2 CPU cores, one run each)", "aigc", "against", "the whole table"], rows)


def link(text: str, anchor: str) -> str:
    return f"[{text}]({PAGE}#{anchor})"


def sentiment_headline(data: dict) -> list[str]:
    phrasebank = data["phrasebank"]
    aigc, tfidf = (
        phrasebank[SENTIMENT_HEADLINE]["test"],
        phrasebank["baselines"]["TF-IDF + logistic regression"]["test"],
    )
    return [
        f"financial sentiment (the PhraseBank, FinBERT's split), {phrasebank[SENTIMENT_HEADLINE]['train_minutes']:g} "
        "minutes: test accuracy / macro-F1",
        f"**{pair(fixed(aigc['accuracy'], 3), fixed(aigc['macro_f1'], 3))}** (on a language model it pre-trained)",
        f"TF-IDF + logistic regression: {pair(fixed(tfidf['accuracy'], 3), fixed(tfidf['macro_f1'], 3))}; "
        "FinBERT reports 0.86 / 0.84",
        link("financial sentiment", "financial-sentiment"),
    ]


SENTIMENT_HEADLINE = "aigc on the Reuters LM, every weight"


def assistant_headline(data: dict) -> list[str]:
    replies = data["replies"]
    assistant, retrieval = (
        replies["generator + retrieval (the assistant)"],
        replies["retrieval only: the classifier's intent chooses"],
    )
    plain = replies["generator alone"]
    return [
        f"customer-service assistant, Bitext's {data['test_requests']} held-out requests: intent accuracy; reply "
        "chrF / ROUGE-L",
        f"**{fixed(data['intent_accuracy']['classifier'], 3)}** (the classifier); the assistant "
        f"{pair(fixed(assistant['chrf'], 1), fixed(assistant['rouge_l'], 3))}, the generator alone "
        f"{pair(fixed(plain['chrf'], 1), fixed(plain['rouge_l'], 3))}",
        f"the nearest pair's intent (BM25): {fixed(data['intent_accuracy']['nearest pair (BM25)'], 3)}; its stored "
        f"reply: **{pair(fixed(retrieval['chrf'], 1), fixed(retrieval['rouge_l'], 3))}**",
        link("customer service", "customer-service"),
    ]


def scores_cell(scores: dict, strong: bool = False) -> str:
    return bold(pair(fixed(scores["accuracy"], 3), fixed(scores["macro_f1"], 3)), strong)


def classifier_rows(table_data: dict, splits: list[str]) -> list[list[str]]:
    """A row per baseline and per aigc classifier (or ensemble) of one data set's results: the splits' accuracy /
    macro-F1, ECE before / after temperature scaling, training (minutes, texts seen, peak memory), texts/s."""
    rows = []
    for name, scores in table_data["baselines"].items():
        minutes = f"{fixed(scores['train_minutes'] * 60, 1)} s" if "train_minutes" in scores else ""
        rows.append([name, *(scores_cell(scores[split]) for split in splits), "", minutes, ""])
    for name, run in table_data.items():
        if not isinstance(run, dict) or "test" not in run or name == "baselines":
            continue
        test = run["test"]
        trained = "its members'"
        if "texts_seen" in run:
            trained = f"{fixed(run['train_minutes'], 0)} min, {thousands(run['texts_seen'])} texts, "
            trained += f"{thousands(run['peak_rss_mib'])} MiB"
        rows.append([
            name,
            *(scores_cell(run[split], split == "test") for split in splits),
            pair(fixed(test["ece_uncalibrated"], 3), fixed(test["ece"], 3)),
            trained,
            thousands(test["texts_per_s"]),
        ])  # fmt: skip
    return rows


def sentiment(results: Results) -> str:
    """The PhraseBank table: baselines and aigc's classifiers measured in one run, then the published anchors."""
    data = results["sentiment"]
    header = ["", "test: accuracy / macro-F1", "AllAgree: accuracy / macro-F1", "ECE: T = 1 / fitted",
              "training", "texts/s"]  # fmt: skip
    rows = classifier_rows(data["phrasebank"], ["test", "test-allagree"])
    for name, anchor in data["anchors"].items():
        every, agreed = anchor["all"], anchor["allagree"]
        agreed_cell = pair(*map(str, agreed)) if agreed else ""
        rows.append([f"reported: {name}", pair(*map(str, every)), agreed_cell, "", "", ""])
    return table(header, rows)


def banking77(results: Results) -> str:
    """The banking77 table: the same baselines and classifiers on 77 intents, then the published anchor."""
    data = results["sentiment"]
    header = ["", "test: accuracy / macro-F1", "ECE: T = 1 / fitted", "training", "texts/s"]
    rows = classifier_rows(data["banking77"], ["test"])
    rows += [
        [f"reported: {name}", f"{accuracy} / -", "", "", ""] for name, accuracy in data["banking77_anchors"].items()
    ]
    return table(header, rows)


def signed(change: float) -> str:
    """A change in accuracy with its sign: +0.004, -0.011, 0.000."""
    text = fixed(change, 3)
    return text if text.startswith("-") or text == "0.000" else "+" + text


def sentiment_robustness(results: Results) -> str:
    """Test accuracy on the PhraseBank's clean and perturbed test sentences, each perturbation's drop beside it."""
    data = results["sentiment"]["phrasebank"]
    models = {"TF-IDF + logistic regression": data["baselines"]["TF-IDF + logistic regression"]}
    models |= {
        name: run for name, run in data.items() if isinstance(run, dict) and "perturbed" in run and name != "baselines"
    }
    perturbations = list(next(iter(models.values()))["perturbed"])
    rows = []
    for name, run in models.items():
        clean = run["test"]["accuracy"]
        cells = [
            f"{fixed(run['perturbed'][p]['accuracy'], 3)} ({signed(run['perturbed'][p]['accuracy'] - clean)})"
            for p in perturbations
        ]
        rows.append([name, fixed(clean, 3), *cells])
    return table(["test accuracy", "clean", *(f"{p} (change)" for p in perturbations)], rows)


def sentiment_checkpoints(results: Results) -> str:
    """The last checkpoint against the one the calibrated validation loss chose, on the test splits."""
    data = results["sentiment"]
    rows = []
    for task, splits in (("phrasebank", ["test", "test-allagree"]), ("banking77", ["test"])):
        for name, run in data[task].items():
            if not isinstance(run, dict) or "best" not in run:
                continue
            for which, scored in (("last", run), ("best", run["best"])):
                cells = [scores_cell(scored[split]) for split in splits] + [""] * (2 - len(splits))
                rows.append([f"{task}: {name}", which, thousands(scored["texts_seen"]), *cells])
    header = ["", "checkpoint", "texts seen", "test: accuracy / macro-F1", "AllAgree: accuracy / macro-F1"]
    return table(header, rows)


def monitor(results: Results) -> str:
    """`aigc monitor`'s throughput: messages scored and exported per second."""
    m = results["sentiment"]["phrasebank"]["monitor"]
    return table(
        ["messages", "messages/s, whole command", "messages/s past start-up", "start-up"],
        [[thousands(m["messages"]), thousands(m["messages_per_s"]), thousands(m["messages_per_s_after_startup"]),
          f"{fixed(m['startup_s'], 1)} s"]],
    )  # fmt: skip


def assistant_command(data: dict) -> str:
    """The command that made results/assistant.json, from the budgets it stores."""
    return (
        f"python benchmarks/run.py --no-throughput --assistant-minutes {data['generator_minutes']:g} "
        f"--assistant-pretrain-minutes {data['pretrain']['minutes']:g} "
        f"--assistant-classifier-minutes {data['classifier_minutes']:g}"
    )


def assistant_intents(results: Results) -> str:
    """Intent accuracy on Bitext's test split (retrieval and the classifier), then banking77's from the sentiment
    run beside its published anchors."""
    data, banking = results["assistant"], results["sentiment"]["banking77"]
    rows = [[f"Bitext ({data['test_requests']} test requests, 27 intents)", name, fixed(accuracy, 3)]
            for name, accuracy in data["intent_accuracy"].items()]  # fmt: skip
    for name, run in banking.items():
        if name != "baselines" and isinstance(run, dict) and "test" in run:
            rows.append(["banking77 (3,080 test requests, 77 intents)", name, fixed(run["test"]["accuracy"], 3)])
    tfidf = banking["baselines"]["TF-IDF + logistic regression"]["test"]["accuracy"]
    rows.append(["banking77 (3,080 test requests, 77 intents)", "TF-IDF + logistic regression", fixed(tfidf, 3)])
    rows += [["banking77, reported", name, fixed(accuracy, 3)]
             for name, accuracy in results["sentiment"]["banking77_anchors"].items()]  # fmt: skip
    return table(["test split", "intent from", "accuracy"], rows)


def assistant_replies(results: Results) -> str:
    """Reply quality, speed and latency of retrieval alone, the generator alone and the assistant."""
    data = results["assistant"]
    rows = []
    for name, scores in data["replies"].items():
        speed = fixed(scores["replies_per_s"], 1) if "replies_per_s" in scores else "-"
        alone = data["one_at_a_time"].get(name)
        latency = pair(fixed(alone["seconds_per_reply"], 2), fixed(alone["first_token_seconds"], 3)) if alone else "-"
        rows.append([name, fixed(scores["chrf"], 1), fixed(scores["rouge_l"], 3), fixed(scores["well_formed"], 3),
                     speed, latency])  # fmt: skip
    header = ["", "chrF", "ROUGE-L", "well-formed placeholders", "replies/s, all at once",
              "s per reply / to first token, one at a time"]  # fmt: skip
    return table(header, rows)


def assistant_training(results: Results) -> str:
    """What each part of the assistant trained on, for how long, in how much memory."""
    data = results["assistant"]
    minutes = {"pretrain": data["pretrain"]["minutes"], "classifier": data["classifier_minutes"]}
    rows = []
    for name, step in data["training"].items():
        seen = f"{mega(step['tokens'])} tokens" if "tokens" in step else f"{thousands(step['texts'])} texts"
        spent = minutes.get(name, data["generator_minutes"])
        rows.append([name, f"{spent:g}", seen, f"{thousands(step['peak_rss_mib'])} MiB"])
    return table(["part", "minutes", "seen", "peak memory"], rows)


def assistant_examples(results: Results) -> str:
    """The example exchanges chosen by seed: the request, its reference reply and each system's."""
    parts = []
    for number, example in enumerate(results["assistant"]["examples"], 1):
        found = ", ".join(f"#{i}" for i in example["retrieved"])
        parts.append(
            f'**{number}. "{example["request"]}"** (pair #{example["id"]}, intent `{example["intent"]}`; the '
            f"assistant's intent `{example['assistant_intent']}`, retrieved {found})\n"
        )
        for label, key in (("reference", "reference"), ("retrieval only (nearest pair)", "nearest_pair_reply"),
                           ("generator alone", "generator_alone"), ("the assistant", "assistant")):  # fmt: skip
            text = example[key].replace("\r\n", "\n").strip() or "(nothing)"
            parts.append(f"{label}:\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


# ---- recommendation ---------------------------------------------------------------------------------------------

RECOMMENDER_MEASURES = ("hr@10", "ndcg@10", "sampled_hr@10", "sampled_ndcg@10", "cold_hr@10", "cold_ndcg@10",
                        "cold_auc")  # fmt: skip


def recommender_command(data: dict) -> str:
    """The command that made results/recommender.json, from the budgets it stores."""
    minutes = data["minutes"]
    return (
        f"python benchmarks/run.py --no-throughput --recommender-minutes {minutes['recommender']:g} "
        f"--recommender-pretrain-minutes {minutes['pretrain']:g} --recommender-text-minutes {minutes['text_model']:g}"
    )


def recommender(results: Results) -> str:
    """Every model's HR/NDCG@10 by the full, sampled and cold protocols and its cold AUC, the best of each column
    in bold, then the published anchors (other data sets: for scale only)."""
    data = results["recommender"]
    scores = data["scores"]
    best = {m: max(s.get(m, 0.0) for s in scores.values()) for m in RECOMMENDER_MEASURES}
    rows = [
        [name] + [bold(fixed(s[m], 3), s[m] == best[m]) if m in s else "-" for m in RECOMMENDER_MEASURES]
        for name, s in scores.items()
    ]
    rows += [[f"reported: {name}"] + [fixed(a[m], 3) if m in a else "" for m in RECOMMENDER_MEASURES]
             for name, a in data["anchors"].items()]  # fmt: skip
    header = ["", "HR@10", "NDCG@10", "sampled HR@10", "sampled NDCG@10", "cold HR@10", "cold NDCG@10", "cold AUC"]
    return table(header, rows)


def recommender_training(results: Results) -> str:
    """What each model trained on, for how long, in how much memory; then the recommenders' speed served."""
    data = results["recommender"]
    minutes = {"pretrain": data["minutes"]["pretrain"], "text model": data["minutes"]["text_model"]}
    rows = []
    for name, step in data["training"].items():
        seen = f"{mega(step['tokens'])} tokens" if "tokens" in step else f"{thousands(step['histories'])} histories"
        speed = data["scores"].get(f"aigc {name}", {}).get("serving")
        served = (
            pair(thousands(speed["batched_per_s"]), fixed(speed["one_at_a_time_with_reasons_per_s"], 1))
            if speed
            else "-"
        )
        spent = minutes.get(name, data["minutes"]["recommender"])
        rows.append([name, f"{spent:g}", seen, f"{thousands(step['peak_rss_mib'])} MiB", served])
    header = ["model", "minutes", "seen", "peak memory", "recommendations/s: all at once / one at a time with reasons"]
    return table(header, rows)


def recommender_tuning(results: Results) -> str:
    """The baselines' settings chosen on validation NDCG@10, of how many tried."""
    rows = [
        [name, ", ".join(f"{k}={v}" for k, v in entry["chosen"].items() if k != "random_state"),
         str(len(entry["tried"])), fixed(max(t["val_ndcg@10"] for t in entry["tried"]), 3)]
        for name, entry in results["recommender"]["tuning"].items()
    ]  # fmt: skip
    return table(["baseline", "chosen", "settings tried", "validation NDCG@10"], rows)


def recommender_examples(results: Results) -> str:
    """Each example user's newest likes, the text-and-id model's top five with their reasons, and the cold items
    it ranks highest for them."""
    parts = []
    for example in results["recommender"]["examples"]:
        parts.append(f"**User {example['user']}**, newest likes: {'; '.join(example['newest_likes'])}\n")
        lines = []
        for rank, item in enumerate(example["top"], 1):
            because = "; ".join(reason["title"] for reason in item["because"]) or "-"
            lines.append(f"{rank}. {item['title']} ({fixed(item['score'], 2)}), because of: {because}")
        cold = "; ".join(f"{item['title']} ({fixed(item['score'], 2)})" for item in example["top_cold"]) or "none"
        parts.append("\n".join(lines) + f"\n\nthe cold items it ranks highest: {cold}\n")
    return "\n".join(parts)


def recommender_headline(data: dict) -> list[str]:
    scores = data["scores"]
    ours = max((name for name in scores if name.startswith("aigc")), key=lambda name: scores[name]["ndcg@10"])
    baselines = [name for name in scores if not name.startswith(("aigc", "text only"))]
    strongest = max(baselines, key=lambda name: scores[name]["ndcg@10"])
    cold = max((name for name in scores if name.startswith("aigc")), key=lambda name: scores[name]["cold_hr@10"])
    return [
        f"recommendation on MovieLens (610 users, full-catalogue ranking), {data['minutes']['recommender']:g} "
        "minutes: HR@10 / NDCG@10; cold items' HR@10",
        f"{ours}: **{pair(fixed(scores[ours]['hr@10'], 3), fixed(scores[ours]['ndcg@10'], 3))}**; cold: "
        f"{cold} {fixed(scores[cold]['cold_hr@10'], 3)}",
        f"{strongest} (implicit, tuned): "
        f"{pair(fixed(scores[strongest]['hr@10'], 3), fixed(scores[strongest]['ndcg@10'], 3))}; id-based models "
        "score no cold item",
        link("recommendation", "recommendation"),
    ]


TABLES: dict[str, Callable[[Results], str]] = {
    "headline": headline,
    "time-to-quality": time_to_quality,
    "sampling": sampling,
    "image-quality": image_quality,
    "image-quality-nfe": quality_nfe,
    "image-quality-samplers": quality_samplers,
    "throughput": throughput,
    "scaling": scaling,
    "serving": serving,
    "compression": compression,
    "serving-lm": serving_lm,
    "serving-lm-long": serving_lm_long,
    "serving-lm-engine": serving_lm_engine,
    "text-decoding": text_decoding,
    "language-model": language_model,
    "language-model-samples": language_model_samples,
    "lm-recipes-round1": recipe_round("lm_recipes_round1"),
    "lm-recipes-round2": recipe_round("lm_recipes"),
    "lm-recipes-tokens": lm_recipes_tokens,
    "finetune": finetune,
    "gan-recipes": gan_recipes,
    "text2image": text2image,
    "text2image-runs": text2image_runs,
    "sentiment": sentiment,
    "sentiment-robustness": sentiment_robustness,
    "sentiment-checkpoints": sentiment_checkpoints,
    "banking77": banking77,
    "monitor": monitor,
    "assistant-intents": assistant_intents,
    "assistant-replies": assistant_replies,
    "assistant-training": assistant_training,
    "assistant-examples": assistant_examples,
    "recommender": recommender,
    "recommender-training": recommender_training,
    "recommender-tuning": recommender_tuning,
    "recommender-examples": recommender_examples,
}


# ---- the pages -----------------------------------------------------------------------------------------------


def tables_in(text: str) -> list[str]:
    """The names of the table blocks of a page, in order."""
    return [match["name"] for match in BLOCK.finditer(text)]


def render(text: str, results: Results) -> str:
    """`text` with every table block rewritten from `results`; an unknown table name is an error."""

    def block(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; benchmarks/tables.py knows {sorted(TABLES)}")
        return match.group(1) + TABLES[name](results) + match.group(4)

    return BLOCK.sub(block, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page differs")
    args = parser.parse_args()
    results = load_results()
    stale = []
    for page in PAGES:
        text = page.read_text()
        new = render(text, results)
        if new != text:
            stale.append(page)
            if not args.check:
                page.write_text(new)
    verb = "differ from the results" if args.check else "rewritten"
    for page in stale:
        print(f"{page.relative_to(ROOT)}: tables {verb}")
    missing = set(TABLES) - {name for page in PAGES for name in tables_in(page.read_text())}
    if missing:
        print(f"no block holds these tables: {sorted(missing)}")
    sys.exit(1 if (args.check and stale) or missing else 0)


if __name__ == "__main__":
    main()
