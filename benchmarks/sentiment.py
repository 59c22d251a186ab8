"""Text classification side by side in one run, on the Financial PhraseBank (FinBERT's split, data/labelled.py)
and on banking77 (77 intents):

- majority class, and TF-IDF + logistic regression (scikit-learn; word 1-2-grams, C chosen on validation);
- aigc's classifier from random weights (`--init none`, the control);
- aigc's classifier on a language model that aigc pre-trained on Reuters-21578 (`aigc train lm --data reuters`):
  every weight fine-tuned, LoRA adapters with the head, every weight with FGM adversarial training, and the
  ensemble of those three (`aigc eval RUN RUN RUN --ensemble`).

Each is scored on the test split (PhraseBank: 970 sentences, and the AllAgree subset of 433): accuracy, macro-F1,
the expected calibration error before and after temperature scaling (fitted on validation), accuracy on
perturbed copies of the test split (data/perturb.py), training minutes on this machine and classification
throughput (texts/s of `aigc eval`). And the monitor's throughput: messages/s that `aigc monitor` scores and
exports, read from standard input."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

from harness import RUNS, aigc, launcher, monitored

# FinBERT (Araci 2019) and baselines it reports, for printing beside ours: (accuracy, macro-F1), on all the test
# sentences and on the AllAgree ones (None: not quoted here); banking77: Casanueva et al. 2020's accuracy
ANCHORS = {
    "FinBERT (BERT-base, further pre-trained on financial news)": {"all": (0.86, 0.84), "allagree": (0.97, 0.95)},
    "ULMFit": {"all": (0.83, 0.79), "allagree": None},
    "LSTM": {"all": (0.71, 0.64), "allagree": None},
}
BANKING_ANCHORS = {
    "BERT-large, fine-tuned (Casanueva et al. 2020)": 0.937,
    "USE + ConveRT (Casanueva et al. 2020)": 0.934,
}
PRETRAIN = ["--tokenizer", "bpe", "--vocab-size", "4096", "--context", "128"]
PERTURBATIONS = ("typos-5", "typos-10", "case", "numbers")


def read(name: str, data_dir: str):
    from aigc.data.labelled import LabelledDataConfig, read_labelled

    return read_labelled(LabelledDataConfig(name=name, data_dir=data_dir))


def scored(predicted, truth) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": accuracy_score(truth, predicted), "macro_f1": f1_score(truth, predicted, average="macro")}


def baselines(name: str, data_dir: str) -> dict:
    """Majority class and TF-IDF + logistic regression, C chosen on the validation split's macro-F1; the latter
    also on the perturbed test splits."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from aigc.data.perturb import perturbed

    data = read(name, data_dir)
    train, validation, test = data.splits["train"], data.splits["validation"], data.splits["test"]
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

    def accuracy(texts) -> float:
        return scored(chosen.predict(vectors.transform(texts)), test.labels)["accuracy"]

    results["TF-IDF + logistic regression"] = {
        **{s: scored(chosen.predict(vectors.transform(r.texts)), r.labels) for s, r in data.splits.items()},
        "perturbed": {p: {"accuracy": accuracy(perturbed(list(test.texts), p))} for p in PERTURBATIONS},
        "C": best_c,
        "train_minutes": minutes,
    }
    return results


def classifier(run: Path, data: str, data_dir: str, minutes: float, *flags) -> dict:
    """`aigc train classifier --data DATA` with `flags` for `minutes`, scored by `aigc eval`."""
    started = time.perf_counter()
    _, memory = monitored(
        "train", "classifier", "--data", data, "--data-dir", data_dir, *flags, "--minutes", minutes,
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
    """`aigc eval` of a classifier run's last checkpoint (its splits at the top level, and its perturbed test
    splits), and of the checkpoint its calibrated validation loss chose (`best`), with the texts it had seen by
    each."""
    last = json.loads(aigc("eval", run, "--json", "--perturb", ",".join(PERTURBATIONS)))
    best = json.loads(aigc("eval", run / "checkpoints" / "best.safetensors", "--json"))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evaluations = [row for row in rows if "val_loss_calibrated" in row]
    chosen = min(evaluations, key=lambda row: row["val_loss_calibrated"])
    return {
        **last["splits"],
        "perturbed": last["perturbed"],
        "temperature": last["temperature"],
        "texts_seen": max(row["texts"] for row in rows if "texts" in row),
        "best": {**best["splits"], "temperature": best["temperature"], "texts_seen": chosen["texts"]},
    }


def ensemble(runs: list[Path]) -> dict:
    """`aigc eval RUN RUN RUN --ensemble`: the runs' probabilities averaged."""
    report = json.loads(aigc("eval", *runs, "--ensemble", "--json", "--perturb", ",".join(PERTURBATIONS)))
    return {"members": [run.name for run in runs], **report["splits"], "perturbed": report["perturbed"]}


def monitor_throughput(run: Path, data_dir: str, messages: int = 20_000) -> dict:
    """Messages/s that `aigc monitor` scores and exports (Prometheus on a free port), the PhraseBank's test
    sentences repeated as JSON lines on its standard input: over the whole command, and past its start-up (the
    same command on one message)."""
    texts = list(read("phrasebank", data_dir).splits["test"].texts)

    def seconds(count: int) -> float:
        lines = "".join(json.dumps({"text": texts[i % len(texts)]}) + "\n" for i in range(count))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        started = time.perf_counter()
        subprocess.run(
            [*launcher(), "monitor", str(run), "--metrics-port", str(port)],
            input=lines, text=True, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        return time.perf_counter() - started

    alone, whole = seconds(1), seconds(messages)
    return {
        "messages": messages,
        "messages_per_s": messages / whole,
        "messages_per_s_after_startup": (messages - 1) / (whole - alone),
        "startup_s": alone,
    }


def bench_sentiment(pretrain_minutes: float, minutes: float, data_dir: str) -> dict:
    """The tables: baselines, then aigc from scratch and on the Reuters language model, on the PhraseBank and on
    banking77; the monitor's throughput."""
    command = "python benchmarks/run.py --no-throughput "
    command += f"--sentiment-minutes {minutes:g} --reuters-minutes {pretrain_minutes:g}"
    results = {"command": command, "anchors": ANCHORS, "banking77_anchors": BANKING_ANCHORS}
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
        "aigc on the Reuters LM, every weight, FGM": ["--init", reuters, "--adversarial", "fgm"],
    }
    for data in ("phrasebank", "banking77"):
        table = {"baselines": baselines(data, data_dir)}
        chosen = variants if data == "phrasebank" else dict(list(variants.items())[:2])
        runs = {name: RUNS / f"bench-{data}-{i}" for i, name in enumerate(chosen)}
        for name, flags in chosen.items():
            table[name] = classifier(runs[name], data, data_dir, minutes, *flags)
        if data == "phrasebank":
            table["ensemble of the three on the Reuters LM"] = ensemble(list(runs.values())[1:])
            table["monitor"] = monitor_throughput(runs["aigc on the Reuters LM, every weight"], data_dir)
        results[data] = table
    results["note"] = "banking77's 77 x 77 confusion matrices are left out of this file (aigc eval --json prints them)"
    return without_large_confusions(results)


def without_large_confusions(value, most: int = 10):
    """`value` without the confusion matrices of more than `most` classes (banking77's would be 2 MB of JSON)."""
    if isinstance(value, dict):
        return {
            key: without_large_confusions(item, most)
            for key, item in value.items()
            if not (key == "confusion" and len(item) > most)
        }
    if isinstance(value, list):
        return [without_large_confusions(item, most) for item in value]
    return value
