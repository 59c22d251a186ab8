"""Scoring an autoencoder by its reconstructions of held-out images: PSNR (mean over images, in dB), the mean
squared error (images in [-1, 1]; what picks a run's best checkpoint) and the FID of the reconstructions
against the originals, in the feature space of the source data set's shipped classifier (what a blurry or
artefacted decoder costs a generator that works in its latents). Scenes are judged on their test split; a
caption folder, which has none, on its own images. A source without a shipped classifier gets no FID."""

from __future__ import annotations

import time

from aigc.core import distributed
from aigc.core.images import to_model_space
from aigc.data.captions import CaptionDataConfig, held_out_images
from aigc.evaluation import metrics
from aigc.evaluation.features import EXTRACTOR_SIZES, load_extractor
from aigc.models.autoencoder import psnr, reconstruct

RECONSTRUCTION_METRICS = ("psnr", "mse", "fid")
RECONSTRUCTED_IMAGES = 1000  # `aigc eval`'s default


def extractor_for(data: CaptionDataConfig):
    """The shipped classifier of the scenes' source, or None (a caption folder: no FID)."""
    kind, _, source = data.name.partition(":")
    return load_extractor(source, distributed.device()) if kind == "scenes" and source in EXTRACTOR_SIZES else None


class ReconstructionJudge:
    def __init__(self, data: CaptionDataConfig, n: int):
        self.images, self.split = held_out_images(data, n)
        self.extractor = extractor_for(data)
        self.reference_stats = None
        if self.extractor is not None:
            self.reference_stats = metrics.gaussian_stats(self.extractor(self.images)[0])

    def __call__(self, autoencoder) -> dict:
        was_training = autoencoder.training
        autoencoder.eval()
        try:
            reconstructions = reconstruct(autoencoder, self.images)
        finally:
            autoencoder.train(was_training)
        originals, decoded = to_model_space(self.images), to_model_space(reconstructions)
        values = {"psnr": float(psnr(originals, decoded).mean()), "mse": float((originals - decoded).pow(2).mean())}
        if self.extractor is not None:
            stats = metrics.gaussian_stats(self.extractor(reconstructions)[0])
            values["fid"] = metrics.frechet_distance(self.reference_stats, stats)
        return values


def evaluate_reconstruction(autoencoder, run_config, n: int, names=RECONSTRUCTION_METRICS) -> dict:
    """`aigc eval` of an autoencoder run: the metrics `names`."""
    started = time.perf_counter()
    judge = ReconstructionJudge(run_config.data, n)
    report = {"reference": f"{run_config.data.name}/{judge.split}", "n": len(judge.images)}
    if judge.extractor is not None:
        report["extractor"] = judge.extractor.describe()
    report |= {name: value for name, value in judge(autoencoder).items() if name in names}
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


class ReconstructionInLoopEvaluator:
    """PSNR and reconstruction FID during training, on `eval_n` held-out images."""

    def __init__(self, config):
        self.judge = ReconstructionJudge(config.data, config.train.eval_n)

    def __call__(self, model, sample) -> dict:
        started = time.perf_counter()
        return self.judge(model) | {"eval_seconds": time.perf_counter() - started}
