"""Financial sentiment on the Financial PhraseBank, FinBERT's split (data/labelled.py), side by side in one run:

- majority class, and TF-IDF + logistic regression (scikit-learn; word 1-2-grams, C chosen on validation);
- aigc's classifier from random weights (`--init none`, the control);
- aigc's classifier on a language model that aigc pre-trained on Reuters-21578 (`aigc train lm --data reuters`),
  every weight fine-tuned, and LoRA adapters with the head.

Each is scored on the 50%-agree test split (970 sentences) and its AllAgree subset (433): accuracy, macro-F1, and
the expected calibration error before and after temperature scaling (fitted on validation), with its training
minutes on this machine and its classification throughput (texts/s of `aigc eval`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness import RUNS, aigc, monitored

# FinBERT (Araci 2019) and baselines it reports, for printing beside ours: (accuracy, macro-F1), on all the test
# sentences and on the AllAgree ones (None: not quoted here)
ANCHORS = {
    "FinBERT (BERT-base, further pre-trained on financial news)": {"all": (0.86, 0.84), "allagree": (0.97, 0.95)},
    "ULMFit": {"all": (0.83, 0.79), "allagree": None},
    "LSTM": {"all": (0.71, 0.64), "allagree": None},
}
PRETRAIN = ["--tokenizer", "bpe", "--vocab-size", "4096", "--context", "128"]


def splits(data_dir: str):
    from aigc.data.labelled import LabelledDataConfig, read_labelled

    return read_labelled(LabelledDataConfig(name="phrasebank", data_dir=data_dir))


def scored(predicted, truth) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": accuracy_score(truth, predicted), "macro_f1": f1_score(truth, predicted, average="macro")}


def baselines(data_dir: str) -> dict:
    """Majority class and TF-IDF + logistic regression, C chosen on the validation split's macro-F1."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    data = splits(data_dir)
    train, validation = data.splits["train"], data.splits["validation"]
    majority = max(set(train.labels), key=train.labels.count)
    results = {"majority class": {s: scored([majority] * len(r), r.labels) for s, r in data.splits.items()}}
    started = time.perf_counter()
    vectors = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    fitted = vectors.fit_transform(train.texts)

    def model(c: float):
        return LogisticRegression(C=c, max_iter=2000).fit(fitted, train.labels)

    def validation_f1(c: float) -> float:
        return scored(model(c).predict(vectors.transform(validation.texts)), validation.labels)["macro_f1"]

    best_c = max((0.1, 1.0, 10.0, 100.0), key=validation_f1)
    chosen = model(best_c)
    minutes = (time.perf_counter() - started) / 60
    results["TF-IDF + logistic regression"] = {
        **{s: scored(chosen.predict(vectors.transform(r.texts)), r.labels) for s, r in data.splits.items()},
        "C": best_c,
        "train_minutes": minutes,
    }
    return results


def classifier(run: Path, data_dir: str, minutes: float, *flags) -> dict:
    """`aigc train classifier --data phrasebank` with `flags` for `minutes`, scored by `aigc eval`."""
    started = time.perf_counter()
    _, memory = monitored(
        "train", "classifier", "--data", "phrasebank", "--data-dir", data_dir, *flags, "--minutes", minutes,
        "--out", run, "--overwrite", "--no-progress",
    )  # fmt: skip
    return {
        "flags": [str(flag) for flag in flags],
        **scored_run(run),
        "train_minutes": minutes,
        "wall_minutes": (time.perf_counter() - started) / 60,
        "peak_rss_mib": memory["peak_rss_mib"],
    }


def scored_run(run: Path) -> dict:
    """`aigc eval` of a classifier run's last checkpoint (its splits at the top level), and of the checkpoint its
    validation loss chose (`best`), with the texts it had seen by each."""
    last = json.loads(aigc("eval", run, "--json"))
    best = json.loads(aigc("eval", run / "checkpoints" / "best.safetensors", "--json"))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evaluations = [row for row in rows if "val_loss" in row]
    chosen = min(evaluations, key=lambda row: row["val_loss"])
    return {
        **last["splits"],
        "temperature": last["temperature"],
        "texts_seen": max(row["texts"] for row in rows if "texts" in row),
        "best": {**best["splits"], "temperature": best["temperature"], "texts_seen": chosen["texts"]},
    }


def bench_sentiment(pretrain_minutes: float, minutes: float, data_dir: str) -> dict:
    """The table: baselines, then aigc from scratch, on the Reuters language model (every weight; LoRA)."""
    command = "python benchmarks/run.py --no-throughput "
    command += f"--sentiment-minutes {minutes:g} --reuters-minutes {pretrain_minutes:g}"
    results = {"command": command, "baselines": baselines(data_dir), "anchors": ANCHORS}
    reuters = RUNS / "bench-reuters-lm"
    monitored(
        "train", "lm", "--data", "reuters", "--data-dir", data_dir, *PRETRAIN, "--minutes", pretrain_minutes,
        "--out", reuters, "--overwrite", "--no-progress",
    )  # fmt: skip
    results["pretraining"] = json.loads(aigc("eval", reuters, "--json", "--metrics", "val_loss,bits_per_byte"))
    variants = {
        "aigc, random weights (--init none)": ["--init", "none", *PRETRAIN[:4]],
        "aigc on the Reuters LM, every weight": ["--init", reuters],
        "aigc on the Reuters LM, LoRA rank 8 + head": ["--init", reuters, "--lora-rank", "8", "--lr", "2e-3"],
    }
    for name, flags in variants.items():
        results[name] = classifier(RUNS / f"bench-sentiment-{len(results)}", data_dir, minutes, *flags)
    return results
