"""Scoring a text-to-image model on scene captions: images drawn from the captions of real test scenes (seed k
for scene k) and of held-out combinations, judged for prompt adherence (evaluation/adherence.py), and the FID of
the test images against the real scenes of the same captions, in the feature space of the source data set's
shipped classifier (each 48-pixel scene resized to its input). The judge's ceiling - real scenes judged the
same way - is reported beside the model's."""

from __future__ import annotations

import dataclasses
import time

import torch

from aigc.core import distributed
from aigc.core.errors import UserError
from aigc.data.captions import CaptionDataConfig, load_captioned, scene_splits
from aigc.evaluation import metrics
from aigc.evaluation.adherence import adherence, size_extents
from aigc.evaluation.features import load_extractor

PROMPTED_METRICS = ("adherence", "fid")


class SceneJudge:
    """The real scenes of both splits (n each), the source's classifier, and what real scenes score."""

    def __init__(self, data: CaptionDataConfig, n: int):
        kind, _, source = data.name.partition(":")
        if kind != "scenes":
            raise UserError(f"{data.name}: adherence is measured on scenes (scenes:mnist ...), whose layout is known")
        self.extractor = load_extractor(source, distributed.device())
        self.splits = {split: load_captioned(data, split, n) for split in scene_splits(data)}
        test = self.splits["test"]
        self.extents = size_extents(test.images, list(test.scenes))
        self.reference_stats = metrics.gaussian_stats(self.extractor(test.images)[0])

    def ceiling(self) -> dict:
        """Adherence of the real scenes: what the judge allows at best."""
        return {split: self.judge(data.images, split) for split, data in self.splits.items()}

    def judge(self, images: torch.Tensor, split: str) -> dict:
        return adherence(images, list(self.splits[split].scenes), self.extractor, self.extents)

    def __call__(self, model, sample, seed: int = 0, names=PROMPTED_METRICS, progress: bool = False) -> dict:
        """{split: adherence} and the test split's FID of images drawn from each real scene's first caption."""
        from aigc.families.registry import generate

        results: dict = {}
        for split, data in self.splits.items():
            prompts = [captions[0] for captions in data.captions]
            seeds = list(range(seed, seed + len(prompts)))
            images = generate(model, seeds, prompts, sample=sample, batch_size=250, progress=progress)
            if "adherence" in names:
                results.setdefault("adherence", {})[split] = self.judge(images, split)
            if "fid" in names and split == "test":
                features = self.extractor(images)[0]
                results["fid"] = metrics.frechet_distance(self.reference_stats, metrics.gaussian_stats(features))
        return results


def evaluate_prompted(model, run_config, n: int, seed: int, names, progress: bool = False) -> dict:
    """`aigc eval` of a text-to-image run on its scenes."""
    started = time.perf_counter()
    judge = SceneJudge(run_config.data, n)
    report = {"reference": f"{run_config.data.name}/test+heldout", "n": n, "extractor": judge.extractor.describe()}
    report |= judge(model, run_config.sample, seed, names, progress)
    report["sampling"] = {**dataclasses.asdict(run_config.sample), "seeds": f"{seed}-{seed + n - 1}"}
    if "adherence" in names:
        report["adherence_real"] = judge.ceiling()
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


class PromptedInLoopEvaluator:
    """Adherence and FID during training, on `eval_n` scenes of each split."""

    def __init__(self, config):
        self.judge = SceneJudge(config.data, config.train.eval_n)

    def __call__(self, model, sample) -> dict:
        started = time.perf_counter()
        values = self.judge(model, sample)
        flat = {"fid": values["fid"], **{f"adherence_{s}": judged["all"] for s, judged in values["adherence"].items()}}
        return flat | {"eval_seconds": time.perf_counter() - started}
