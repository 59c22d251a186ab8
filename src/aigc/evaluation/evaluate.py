"""Scoring a model or a set of images: `aigc eval` and the training loop call `evaluate`, which scores a run as
its family says (`Family.evaluation`, a key of JUDGINGS): images against a reference split (generated or loaded,
features from the data set's extractor), text by evaluation/language.py, reconstructions and prompted images by
their own modules.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from aigc.core import distributed
from aigc.core.config import Config
from aigc.core.errors import ConfigError, UserError
from aigc.core.io import atomic_write
from aigc.data.datasets import IMAGE_SUFFIXES, DataConfig, load_dataset
from aigc.data.perturb import PERTURBATIONS
from aigc.evaluation import metrics
from aigc.evaluation.classification import (
    CLASSIFICATION_METRICS,
    ClassifierInLoopEvaluator,
    ensemble_report,
    evaluate_classifier,
)
from aigc.evaluation.features import (
    SECOND_ARCHITECTURE,
    Extractor,
    InceptionExtractor,
    load_extractor,
    weights_path,
)
from aigc.evaluation.language import TEXT_METRICS, TextInLoopEvaluator, evaluate_language_model
from aigc.evaluation.prompted import PROMPTED_METRICS, PromptedInLoopEvaluator, evaluate_prompted
from aigc.evaluation.ranking import RANKING_METRICS, RankingInLoopEvaluator, evaluate_recommender
from aigc.evaluation.reconstruction import (
    RECONSTRUCTED_IMAGES,
    RECONSTRUCTION_METRICS,
    ReconstructionInLoopEvaluator,
    evaluate_reconstruction,
)

IMAGE_METRIC_NAMES = ("fid", "kid", "pr", "coverage", "is")
FEATURE_METRICS = ("fid", "kid", "pr")  # what the second extractor's features score too, as fid_2, kid_2, ...
METRICS = tuple(
    dict.fromkeys(
        IMAGE_METRIC_NAMES
        + TEXT_METRICS
        + PROMPTED_METRICS
        + RECONSTRUCTION_METRICS
        + CLASSIFICATION_METRICS
        + RANKING_METRICS
    )
)
DEFAULT_IMAGES = 10_000
PROMPTED_IMAGES = 1000  # per split: a text-to-image model draws each scene's caption


@dataclass(frozen=True)
class EvalConfig(Config):
    data: str | None = field(default=None, metadata={"help": "reference data set (default: the run's own)"})
    data_dir: str | None = field(default=None, metadata={"help": "root holding the data set files"})
    split: str | None = field(default=None, metadata={"help": "reference split (default: test, or train)"})
    # -n too: under torchrun, whose own parser reads --n as an ambiguous abbreviation of its options
    n: int | None = field(
        default=None,
        metadata={
            "help": f"images to generate / use (default {DEFAULT_IMAGES}), or texts to generate (default 16)",
            "aliases": ("-n",),
            "min": 2,
        },
    )
    metrics: str | None = field(
        default=None,
        metadata={"help": f"comma-separated: {','.join(METRICS)} (default: the model's family's; images: all but is)"},
    )
    seed: int = field(default=0, metadata={"help": "first seed of the generated images", "min": 0})
    features: Literal["aigc", "inception"] = field(
        default="aigc", metadata={"help": "aigc (the data set's CNN) or inception (torch-fidelity, optional)"}
    )
    perturb: str | None = field(
        default=None,
        metadata={"help": "classifiers: also score perturbed copies of the test split: typos-5,typos-10,case,numbers"},
    )
    stride: int | None = field(
        default=None,
        metadata={"help": "text: validation windows start every N tokens (default: the model's context)", "min": 1},
    )

    def check(self) -> None:
        try:
            if self.metrics is not None:
                parse_metrics(self.metrics)
        except UserError as error:
            raise ConfigError("metrics", self.metrics, str(error)) from None
        unknown = [name for name in self.perturbations if name not in PERTURBATIONS]
        if unknown:
            raise ConfigError("perturb", self.perturb, f"choose among {', '.join(PERTURBATIONS)}")

    @property
    def perturbations(self) -> list[str]:
        return [name.strip() for name in (self.perturb or "").split(",") if name.strip()]


def parse_metrics(text: str) -> tuple[str, ...]:
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise UserError(f"unknown metric(s) {', '.join(unknown) or text!r}; choose from {', '.join(METRICS)}")
    return names


def modality_metrics(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    """The metrics named in `text`, each one that applies to `what` is scored."""
    names = parse_metrics(text)
    stray = [m for m in names if m not in allowed]
    if stray:
        raise UserError(f"--metrics {', '.join(stray)}: not a metric of {what}; choose from {', '.join(allowed)}")
    return names


def reference_split(config: EvalConfig) -> str:
    if config.split:
        return config.split
    return "train" if config.data == "digits" else "test"


def dataset_images(data: str, split: str, data_dir: str | None) -> torch.Tensor:
    return load_dataset(DataConfig(name=data, data_dir=data_dir), split).images


def make_extractor(config: EvalConfig):
    device = distributed.device()
    return InceptionExtractor(device) if config.features == "inception" else load_extractor(config.data, device)


def second_extractor(config: EvalConfig) -> Extractor | None:
    """The second, independently built and trained extractor of the data set (`fid_2`), where aigc ships one."""
    if config.features != "aigc" or not weights_path(config.data, SECOND_ARCHITECTURE).is_file():
        return None
    return load_extractor(config.data, distributed.device(), SECOND_ARCHITECTURE)


def cache_dir() -> Path:
    return Path.home() / ".cache" / "aigc" / "features"


def reference_features(extractor: Extractor, config: EvalConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and class probabilities of the reference split, cached by (data checksum, extractor, split)."""
    split = reference_split(config)
    images = dataset_images(config.data, split, config.data_dir)
    checksum = hashlib.sha256(images.numpy().tobytes()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.data)  # folder:PATH names hold slashes
    path = cache_dir() / f"{name}-{split}-{checksum}-{extractor.sha256[:16]}.safetensors"
    if path.is_file():
        try:
            cached = load_file(str(path))
            return cached["features"], cached["probs"]
        except (SafetensorError, OSError, KeyError):
            print(f"notice: recomputing the corrupt feature cache {path}", file=sys.stderr)
    features, probs = extractor(images)
    atomic_write(path, lambda tmp: save_file({"features": features, "probs": probs}, tmp))
    return features, probs


def shipped_stats_path(data: str, split: str, architecture: str = "cnn") -> Path:
    name = f"{data}-{split}" if architecture == "cnn" else f"{data}-{split}-{architecture}"
    return Path(str(resources.files("aigc.evaluation") / "weights" / f"{name}.stats.safetensors"))


def reference(
    extractor: Extractor, config: EvalConfig, need_features: bool
) -> tuple[torch.Tensor | None, metrics.GaussianStats]:
    """Reference features and their Gaussian fit; when the data set is not on this machine and only FID is
    asked for, the statistics shipped in the package for the official files stand in."""
    try:
        features, _ = reference_features(extractor, config)
        return features, metrics.gaussian_stats(features)
    except UserError:
        path = shipped_stats_path(config.data, reference_split(config), extractor.architecture)
        if need_features or not path.is_file():
            raise
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("extractor_sha256") != extractor.sha256:
                raise
            stats = metrics.GaussianStats(f.get_tensor("mu"), f.get_tensor("sigma"), int(f.metadata()["n"]))
        print(
            f"notice: {config.data} files not found; FID uses the shipped statistics of the official "
            f"{reference_split(config)} split",
            file=sys.stderr,
        )
        return None, stats


def load_image_files(path: Path, limit: int | None = None) -> torch.Tensor:
    """A folder of images (recursive) or an .npz holding one uint8 array, as uint8 [N, C, H, W]."""
    if path.suffix == ".npz":
        return _load_npz(path)
    if not path.is_dir():
        raise UserError(f"{path} is neither a run, a checkpoint, a folder of images nor an .npz file")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise UserError(f"folder {path} holds no images to evaluate")
    arrays = []
    for file in files:
        try:
            with Image.open(file) as image:
                arrays.append(np.asarray(image.convert("L" if image.mode in ("1", "L", "I;16") else "RGB")))
        except (UnidentifiedImageError, OSError) as error:
            raise UserError(f"cannot decode image {file} ({error}); remove it") from None
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise UserError(f"images under {path} differ in size or channels ({sorted(shapes)[:3]}); make them alike")
    stacked = np.stack(arrays)
    stacked = stacked[..., None] if stacked.ndim == 3 else stacked
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()


def _load_npz(path: Path) -> torch.Tensor:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = [archive[k] for k in archive.files if archive[k].ndim in (3, 4)]
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: unreadable .npz ({error})") from None
    if not arrays:
        raise UserError(f"{path} holds no image array ([N, H, W] or [N, H, W, C] / [N, C, H, W])")
    images = arrays[0]
    if images.dtype != np.uint8:
        raise UserError(f"{path}: images are {images.dtype}; save them as uint8 in [0, 255]")
    if images.ndim == 3:
        images = images[:, None]
    elif images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(images))


def extract(images: torch.Tensor, extractor: Extractor, total: int, progress: bool = False):
    """Features and class probabilities of all `total` images, in order, from this rank's share `images` (under
    torchrun each rank extracts its share; alone, `images` are all of them)."""
    features, probs = extractor(images, progress=progress)
    return distributed.gather(features, total), distributed.gather(probs, total)


def score(
    features: torch.Tensor, probs: torch.Tensor, extractor: Extractor, config: EvalConfig, names: tuple[str, ...]
) -> dict[str, float | dict]:
    """The requested metrics of the images whose features and class probabilities are given, against the
    reference split."""
    results: dict = {}
    need_features = bool({"kid", "pr"} & set(names))
    if need_features or "fid" in names:
        real_features, real_stats = reference(extractor, config, need_features)
    if "fid" in names:
        results["fid"] = metrics.frechet_distance(real_stats, metrics.gaussian_stats(features))
    if "kid" in names:
        mean, std = metrics.kernel_inception_distance(real_features, features)
        results["kid"], results["kid_std"] = mean, std
    if "pr" in names:
        results["precision"], results["recall"] = metrics.precision_recall(real_features, features)
    if "coverage" in names:
        results["coverage"] = metrics.class_coverage(probs).as_dict()
    if "is" in names:
        results["classifier_score"] = metrics.classifier_score(probs)
    return results


def evaluate(
    source: str | Path | torch.Tensor, config: EvalConfig, sample_overrides: dict | None = None, progress: bool = False
) -> dict:
    """Score generated or stored outputs. `source`: a run directory or checkpoint (outputs are generated with
    seeds seed..seed+n-1 and the run's sampling settings, updated by `sample_overrides`, and scored as its family
    says), a folder or .npz of images, `real:NAME/SPLIT`, or a uint8 tensor [N, C, H, W]. Under torchrun the
    ranks share the work (each generates and extracts a contiguous share of the seeds or images) and all return
    the same report."""
    from aigc.families.images import IMAGE_METRICS
    from aigc.families.registry import family_of, load_model, with_sample

    progress = progress and distributed.is_main()
    model, run_config, default_metrics = None, None, IMAGE_METRICS  # folders, .npz files, tensors hold images
    if not isinstance(source, torch.Tensor) and is_model(Path(source)):
        model, run_config = load_model(source, distributed.device())
        run_config = with_sample(run_config, sample_overrides or {})
        family = family_of(run_config)
        default_metrics, kind = family.metrics, judging(family)
        if kind.report is not None:
            names = modality_metrics(config.metrics or default_metrics, kind.metrics, kind.what)
            return {"source": str(source), **kind.report(model, run_config, config, names, progress)}
        if config.data is None:
            data_dir = config.data_dir or run_config.data.data_dir
            config = dataclasses.replace(config, data=run_config.data.name, data_dir=data_dir)
    names = modality_metrics(config.metrics or default_metrics, IMAGE_METRIC_NAMES, "images")
    return evaluate_images(source, model, run_config, config, names, progress)


def evaluate_ensemble(sources: list, config: EvalConfig) -> dict:
    """Several classifier runs scored as one model, their probabilities averaged (`aigc eval ... --ensemble`)."""
    from aigc.families.registry import family_of, load_ensemble

    model, run = load_ensemble(sources, distributed.device())
    names = modality_metrics(config.metrics or family_of(run).metrics, CLASSIFICATION_METRICS, "a classifier")
    return ensemble_report(model, run, config, names)


def evaluate_images(source, model, run_config, config: EvalConfig, names: tuple[str, ...], progress: bool) -> dict:
    """The image metrics of generated (`model` given) or stored images against the reference split."""
    from aigc.families.registry import generate

    started = time.perf_counter()
    config = dataclasses.replace(config, n=config.n or DEFAULT_IMAGES)
    if config.n < max(2, distributed.world_size()):
        raise UserError(f"--n {config.n}: evaluation needs at least 2 images, and one per process")
    if config.data is None:
        raise UserError("pass --data NAME: the reference data set whose extractor and split score the images")
    extractor = make_extractor(config)  # before generating, so a missing extractor fails fast
    report: dict = {"reference": f"{config.data}/{reference_split(config)}", "extractor": extractor.describe()}
    if model is not None:
        seeds = range(config.seed, config.seed + config.n)
        images = generate(model, distributed.shard(seeds), sample=run_config.sample, batch_size=250, progress=progress)
        settings = dict(sorted(dataclasses.asdict(run_config.sample).items()))
        report["sampling"] = {**settings, "seeds": f"{seeds.start}-{seeds.stop - 1}"}
    else:
        images = stored_images(source, config)
    if not isinstance(source, torch.Tensor):
        report["source"] = str(source)
    if model is None:
        report["n"] = len(images)
        images = images[distributed.shard(range(len(images)))]
    else:
        report["n"] = config.n
    features, probs = extract(images, extractor, report["n"], progress)
    report.update(score(features, probs, extractor, config, names))
    second = second_extractor(config)
    if second is not None and set(names) & set(FEATURE_METRICS):
        features, probs = extract(images, second, report["n"])
        scored = score(features, probs, second, config, tuple(m for m in names if m in FEATURE_METRICS))
        report.update({f"{key}_2": value for key, value in scored.items()})
        report["extractor_2"] = second.describe()
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


def stored_images(source, config: EvalConfig) -> torch.Tensor:
    """The images of a tensor, `real:NAME/SPLIT` (n drawn at random by the seed) or a folder / .npz (its first n)."""
    if isinstance(source, torch.Tensor):
        return source
    if str(source).startswith("real:"):
        name, _, split = str(source).removeprefix("real:").partition("/")
        images = dataset_images(name, split or "train", config.data_dir)
        return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed))[: config.n]]
    images = load_image_files(Path(source))
    if len(images) < config.n:
        raise UserError(f"{source} holds {len(images)} images, fewer than --n {config.n}; pass --n {len(images)}")
    return images[: config.n]


def is_model(path: Path) -> bool:
    """A run directory (it has checkpoints/) or a checkpoint file."""
    return (path / "checkpoints").is_dir() or path.suffix == ".safetensors"


def in_loop_evaluator(config):
    """The in-loop evaluation of a run: by what its family generates."""
    from aigc.families.registry import family_of

    return judging(family_of(config)).in_loop(config)


class InLoopEvaluator:
    """FID and class coverage of a model during training: the reference statistics of the run's data set are
    computed once, each call generates `eval_n` images from fixed seeds with the run's sample settings."""

    def __init__(self, config):
        self.n = config.train.eval_n
        self.extractor = load_extractor(config.data.name, distributed.device())
        reference_config = EvalConfig(data=config.data.name, data_dir=config.data.data_dir)
        _, self.reference_stats = reference(self.extractor, reference_config, False)

    def __call__(self, model, sample) -> dict:
        from aigc.families.registry import generate

        started = time.perf_counter()
        images = generate(model, distributed.shard(range(self.n)), sample=sample, batch_size=250)
        features, probs = extract(images, self.extractor, self.n)
        values = {"fid": metrics.frechet_distance(self.reference_stats, metrics.gaussian_stats(features))}
        coverage = metrics.class_coverage(probs)  # every aigc extractor is a classifier of the data's classes
        values["classes_present"] = coverage.classes_present
        values["class_entropy"] = coverage.normalized_entropy
        values["eval_seconds"] = time.perf_counter() - started
        return values


@dataclass(frozen=True)
class Judging:
    """How the outputs of a kind of model are scored: the metrics that apply, the report of `aigc eval` on a run
    (None: images, scored against a reference split by `evaluate_images`), and the in-loop evaluator. A family
    names its kind (`Family.evaluation`); these are the kinds."""

    metrics: tuple[str, ...]
    what: str  # for messages: "--metrics x: not a metric of <what>"
    report: Callable[..., dict] | None  # (model, run config, EvalConfig, names, progress) -> dict
    in_loop: type


JUDGINGS = {
    "images": Judging(IMAGE_METRIC_NAMES, "images", None, InLoopEvaluator),
    "text": Judging(
        TEXT_METRICS,
        "a language model",
        lambda model, run, config, names, progress: evaluate_language_model(model, run, config, names),
        TextInLoopEvaluator,
    ),
    "reconstructions": Judging(  # judged against the images they reconstruct
        RECONSTRUCTION_METRICS,
        "an autoencoder",
        lambda model, run, config, names, progress: evaluate_reconstruction(
            model, run, config.n or RECONSTRUCTED_IMAGES, names
        ),
        ReconstructionInLoopEvaluator,
    ),
    "labels": Judging(  # judged against the labels of each split of the data set
        CLASSIFICATION_METRICS,
        "a classifier",
        lambda model, run, config, names, progress: evaluate_classifier(model, run, config, names),
        ClassifierInLoopEvaluator,
    ),
    "prompted images": Judging(  # images of captions: judged against the scenes they describe
        PROMPTED_METRICS,
        "a text-to-image model",
        lambda model, run, config, names, progress: evaluate_prompted(
            model, run, config.n or PROMPTED_IMAGES, config.seed, names, progress
        ),
        PromptedInLoopEvaluator,
    ),
    "rankings": Judging(  # judged by the rank of each user's next liked item
        RANKING_METRICS,
        "a recommender",
        lambda model, run, config, names, progress: evaluate_recommender(model, run, config, names),
        RankingInLoopEvaluator,
    ),
}


def judging(family) -> Judging:
    if family.evaluation not in JUDGINGS:
        raise ValueError(f"{family.name}: evaluation {family.evaluation!r} is none of {', '.join(JUDGINGS)}")
    return JUDGINGS[family.evaluation]
