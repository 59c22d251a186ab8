"""Pre-train, then fine-tune, on this machine: a byte-level BPE model pre-trained on the ten Gutenberg books, then
fine-tuned on the Bitext customer-support conversations (request -> agent reply), every weight against LoRA,
side by side, the same wall-clock budget each. Reported: trainable parameters, tokens per second, peak memory,
and the validation loss of the fine-tuning data (nats per assistant token, on the last 10% of the
conversations) before fine-tuning (the pre-trained weights, the chat markers' new rows the mean of the others)
and after each.

The CSV is turned into a chat .jsonl under runs/ (never copied into the project: its licence is the data set's)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

from harness import RUNS, aigc, monitored

CONTEXT = 256  # tokens: most Bitext conversations fit, in a BPE of 2048 tokens
PRETRAIN = ["--data", "gutenberg", "--tokenizer", "bpe", "--vocab-size", "2048", "--context", CONTEXT,
            "--batch", 16]  # fmt: skip
VARIANTS = [("full fine-tune", ["--lr", "1e-3"]), ("LoRA rank 8", ["--lora-rank", "8", "--lr", "2e-3"])]


def support_conversations(data_dir: str, out: Path) -> Path:
    """Bitext's requests and responses as {"messages": [user, assistant]} lines."""
    source = Path(data_dir) / "customer-support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    with open(source, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        for row in rows:
            messages = [
                {"role": "user", "content": row["instruction"]},
                {"role": "assistant", "content": row["response"]},
            ]
            f.write(json.dumps({"messages": messages}) + "\n")
    return out


def loss_before(run: Path, data: str) -> float:
    """The validation loss of the fine-tuning data under the weights the fine-tune started from."""
    from aigc.data.chat import ChatFormat, read_chat, split_rows
    from aigc.evaluation.language import chat_loss_report
    from aigc.families.lm.init import init_weights, with_new_rows
    from aigc.families.lm.model import base
    from aigc.families.registry import load_json

    config = load_json(run / "config.json")
    config = dataclasses.replace(config, finetune=dataclasses.replace(config.finetune, lora_rank=0))
    model = base(config)
    model.load_state_dict(with_new_rows(init_weights(config), model))
    rows = split_rows(read_chat(Path(data.removeprefix("chat:"))))[1]
    return chat_loss_report(model.eval(), model.tokenizer, ChatFormat.of(config), rows)["val_loss"]


def bench_finetune(pretrain_minutes: float, minutes: float, data_dir: str) -> dict:
    base = RUNS / "bench-pretrain"
    monitored("train", "lm", *PRETRAIN, "--data-dir", data_dir, "--minutes", pretrain_minutes, "--out", base,
              "--overwrite", "--no-progress")  # fmt: skip
    pretrained = json.loads(aigc("eval", base, "--data-dir", data_dir, "--json", "--metrics", "val_loss"))
    data = f"chat:{support_conversations(data_dir, RUNS / 'bench-support' / 'support.jsonl')}"
    rows, before = [], None
    for name, flags in VARIANTS:
        run = RUNS / "bench-finetune"
        output, memory = monitored("train", "lm", "--init", base, "--data", data, "--minutes", minutes,
                                   *flags, "--out", run, "--overwrite", "--no-progress")  # fmt: skip
        trainable = next(line for line in output.splitlines() if line.startswith("trainable parameters"))
        before = before if before is not None else loss_before(run, data)
        after = json.loads(aigc("eval", run, "--json", "--metrics", "val_loss"))
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        last = [r for r in metrics if "loss" in r][-1]
        rows.append({
            "variant": name, "flags": " ".join(flags), "trainable": trainable.removeprefix("trainable parameters: "),
            "val_loss_after": after["val_loss"], "conversations_scored": after["conversations"],
            "tokens": last["tokens"], "tokens_per_s": last["tokens"] / last["train_seconds"], **memory,
        })  # fmt: skip
        print(f"fine-tune {name}: {rows[-1]}")
    return {
        "pretrain": {"flags": " ".join(map(str, PRETRAIN)), "minutes": pretrain_minutes,
                     "gutenberg_val_loss": pretrained["val_loss"]},
        "minutes": minutes,
        "val_loss_before": before,
        "rows": rows,
    }  # fmt: skip
