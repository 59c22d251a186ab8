"""Scoring a classifier on labelled texts: accuracy, macro-F1 (scikit-learn's), negative log-likelihood, the
confusion matrix, and calibration - the expected calibration error of the top label (Guo et al. 2017: 15 equal
bins of confidence, the gap between each bin's accuracy and mean confidence weighted by its share) before and
after temperature scaling. `aigc eval` on a classifier run scores every split; the training loop scores the
validation split and fits the model's temperature on it, so each checkpoint's probabilities are calibrated."""

from __future__ import annotations

import dataclasses
import time

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


def split_scores(family, model, rows: Rows, sample) -> dict:
    """The metrics of the model on `rows` at its temperature (the sample's, or the model's own), and its expected
    calibration error before any (temperature 1)."""
    labels = family.labels(model)
    truth = class_indices(rows, labels)
    started = time.perf_counter()
    logits = family.logits(model, list(rows.texts))
    seconds = time.perf_counter() - started
    temperature = family.temperature(model) if sample.temperature is None else sample.temperature
    report = scores((logits / temperature).softmax(-1), truth, len(labels))
    report["ece_uncalibrated"] = expected_calibration_error(logits.softmax(-1), truth)
    report["texts_per_s"] = len(rows) / seconds
    return report


def evaluate_classifier(model, run, config, names: tuple[str, ...]) -> dict:
    """`aigc eval` of a classifier: every split of its data set (or of `--data`), the test split's metrics at the
    top level."""
    from aigc.families.registry import family_of

    family = family_of(run)
    # another data set is read as the run's was (its columns, its delimiter)
    data_config = run.data if config.data is None else dataclasses.replace(run.data, name=config.data)
    data_dir = config.data_dir or run.data.data_dir
    data = read_labelled(dataclasses.replace(data_config, data_dir=data_dir))
    chosen = [config.split] if config.split else list(data.splits)
    unknown = [split for split in chosen if split not in data.splits]
    if unknown:
        raise UserError(f"--split {unknown[0]}: {data_config.name} has the splits {', '.join(data.splits)}")
    splits = {split: split_scores(family, model, data.splits[split], run.sample) for split in chosen}
    headline = splits.get("test") or splits[chosen[0]]
    report = {
        "data": data_config.name,
        "labels": list(family.labels(model)),
        "temperature": family.temperature(model),
        **{name: headline[name] for name in names},
        "splits": splits,
    }
    if config.perturbations:
        split = "test" if "test" in data.splits else chosen[0]
        report["perturbed"] = perturbed_scores(family, model, data.splits[split], run.sample, config.perturbations)
    return report


def perturbed_scores(family, model, rows: Rows, sample, perturbations: list[str]) -> dict:
    """The metrics on perturbed copies of `rows` (data/perturb.py), each with its accuracy drop from the clean
    rows."""
    clean = split_scores(family, model, rows, sample)["accuracy"]
    report = {}
    for name in perturbations:
        changed = dataclasses.replace(rows, texts=tuple(perturbed(list(rows.texts), name)))
        scored = split_scores(family, model, changed, sample)
        report[name] = {**scored, "accuracy_drop": clean - scored["accuracy"]}
    return report


class ClassifierInLoopEvaluator:
    """The validation loss (before calibration), accuracy and macro-F1 of a classifier during training, on the
    first `eval_n` texts of the validation split; then its temperature is fitted on them, and the calibrated
    expected calibration error reported."""

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
            "val_ece": expected_calibration_error((logits / temperature).softmax(-1), truth),
            "temperature": temperature,
            "eval_seconds": time.perf_counter() - started,
        }
