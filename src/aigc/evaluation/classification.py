"""Scoring a classifier on labelled texts: accuracy, macro-F1 (scikit-learn's), negative log-likelihood, the
confusion matrix, and calibration - the expected calibration error of the top label (Guo et al. 2017: 15 equal
bins of confidence, the gap between each bin's accuracy and mean confidence weighted by its share) before and
after temperature scaling. `aigc eval` on a classifier run scores every split; the training loop scores the
validation split and fits the model's temperature on it, so each checkpoint's probabilities are calibrated."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import torch

from aigc.core.errors import UserError
from aigc.data.labelled import Rows, class_indices, read_labelled
from aigc.data.perturb import perturbed
from aigc.models.classifier import fit_temperature

CLASSIFICATION_METRICS = ("accuracy", "macro_f1", "nll", "ece", "ece_uncalibrated")
BINS = 15


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = BINS) -> float:
    confidence, predicted = probabilities.max(1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            gap = (correct[inside].mean() - confidence[inside].mean()).abs()
            error += float(gap) * float(inside.float().mean())
    return error


def scores(probabilities: torch.Tensor, labels: torch.Tensor, classes: int) -> dict:
    """The metrics of probabilities [N, classes] against labels [N] (class indices)."""
    from sklearn.metrics import confusion_matrix, f1_score

    predicted = probabilities.argmax(1)
    every = list(range(classes))
    nll = torch.nn.functional.nll_loss(probabilities.clamp_min(1e-12).log(), labels)
    return {
        "accuracy": float((predicted == labels).float().mean()),
        "macro_f1": float(f1_score(labels, predicted, labels=every, average="macro", zero_division=0)),
        "nll": float(nll),
        "ece": expected_calibration_error(probabilities, labels),
        "confusion": confusion_matrix(labels, predicted, labels=every).tolist(),  # rows: true, columns: predicted
        "n": len(labels),
    }


# texts -> (probabilities at the model's temperature, at temperature 1), from one pass over the texts
Judge = Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]]


def judge(family, model, sample) -> Judge:
    """A labelling model's judge (an ensemble's too); its temperature is the sample's, or the model's own."""
    return lambda texts: family.judged(model, texts, sample)


def split_scores(both: Judge, labels: tuple[str, ...], rows: Rows) -> dict:
    """The metrics of the judge's probabilities on `rows`, its expected calibration error at temperature 1
    beside them, and its throughput."""
    truth = class_indices(rows, labels)
    started = time.perf_counter()
    calibrated, raw = both(list(rows.texts))
    seconds = time.perf_counter() - started
    report = scores(calibrated, truth, len(labels))
    report["ece_uncalibrated"] = expected_calibration_error(raw, truth)
    report["texts_per_s"] = len(rows) / seconds
    return report


def evaluate_classifier(model, run, config, names: tuple[str, ...]) -> dict:
    """`aigc eval` of a classifier: every split of its data set (or of `--data`), the test split's metrics at the
    top level."""
    from aigc.families.registry import family_of

    family = family_of(run)
    report = classification_report(judge(family, model, run.sample), family.labels(model), run, config, names)
    return {**report, "temperature": family.temperature(model)}


def ensemble_report(model, run, config, names: tuple[str, ...]) -> dict:
    """An ensemble of classifiers (families/labelling.py) as one model, on the data set of its first member's run
    config `run` (or `--data`)."""
    from aigc.families.registry import family_of

    report = classification_report(judge(family_of(run), model, run.sample), model.labels, run, config, names)
    return {"members": model.sources, **report}


def classification_report(both: Judge, labels: tuple[str, ...], run, config, names: tuple[str, ...]) -> dict:
    """The metrics of a judge on every split of the run's data set (or of `--data`, read as the run's was: its
    columns, its delimiter), the test split's at the top level, and on perturbed copies when asked."""
    data_config = run.data if config.data is None else dataclasses.replace(run.data, name=config.data)
    data = read_labelled(dataclasses.replace(data_config, data_dir=config.data_dir or run.data.data_dir))
    chosen = [config.split] if config.split else list(data.splits)
    unknown = [split for split in chosen if split not in data.splits]
    if unknown:
        raise UserError(f"--split {unknown[0]}: {data_config.name} has the splits {', '.join(data.splits)}")
    splits = {split: split_scores(both, labels, data.splits[split]) for split in chosen}
    headline = splits.get("test") or splits[chosen[0]]
    report = {"data": data_config.name, "labels": list(labels), **{name: headline[name] for name in names}}
    report["splits"] = splits
    if config.perturbations:
        split = "test" if "test" in data.splits else chosen[0]
        report["perturbed"] = perturbed_scores(both, labels, data.splits[split], config.perturbations)
    return report


def perturbed_scores(both: Judge, labels: tuple[str, ...], rows: Rows, perturbations: list[str]) -> dict:
    """The metrics on perturbed copies of `rows` (data/perturb.py), each with its accuracy drop from the clean
    rows."""
    clean = split_scores(both, labels, rows)["accuracy"]
    report = {}
    for name in perturbations:
        changed = dataclasses.replace(rows, texts=tuple(perturbed(list(rows.texts), name)))
        scored = split_scores(both, labels, changed)
        report[name] = {**scored, "accuracy_drop": clean - scored["accuracy"]}
    return report


class ClassifierInLoopEvaluator:
    """The validation loss (before calibration), accuracy and macro-F1 of a classifier during training, on the
    first `eval_n` texts of the validation split; then its temperature is fitted on them, and the calibrated
    loss and expected calibration error reported. The calibrated loss picks the best checkpoint: the raw one
    grows as training makes the model over-confident, even while it ranks and labels better, and so chose
    early checkpoints of lower accuracy (docs/benchmarks.md)."""

    def __init__(self, config):
        from aigc.families.registry import family_of

        self.family = family_of(config)
        self.rows = read_labelled(config.data).splits["validation"]
        self.rows = self.rows.take(range(min(len(self.rows), config.train.eval_n)))

    def __call__(self, model, sample) -> dict:
        started = time.perf_counter()
        labels = self.family.labels(model)
        truth = class_indices(self.rows, labels)
        logits = self.family.logits(model, list(self.rows.texts))
        values = scores(logits.softmax(-1), truth, len(labels))
        temperature = fit_temperature(logits, truth)
        self.family.calibrate(model, temperature)
        return {
            "val_loss": values["nll"],
            "val_accuracy": values["accuracy"],
            "val_macro_f1": values["macro_f1"],
            "val_ece_uncalibrated": values["ece"],
            "val_loss_calibrated": float(torch.nn.functional.cross_entropy(logits / temperature, truth)),
            "val_ece": expected_calibration_error((logits / temperature).softmax(-1), truth),
            "temperature": temperature,
            "eval_seconds": time.perf_counter() - started,
        }
