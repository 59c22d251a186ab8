"""Several sets of images scored in one call - runs, or one run under several sample settings - and the pairs
whose order the two feature spaces disagree on: `fid` ranks one ahead, `fid_2` the other. A default chosen
from one classifier's features alone can then mislead, so `aigc eval` warns and shows both, with the precision
and recall behind each."""

from __future__ import annotations

import itertools

from aigc.evaluation.evaluate import EvalConfig, evaluate


def compare(sources: list[str], config: EvalConfig, settings: list[dict], progress: bool = False) -> dict:
    """Each source evaluated under each of `settings` (sample overrides; [{}]: the run's own), in order; the
    reports, each with a `label`, and the rank disagreements between them."""
    reports = []
    for source, overrides in itertools.product(sources, settings):
        report = evaluate(source, config, sample_overrides=overrides, progress=progress)
        shown = " ".join(f"{key}={value}" for key, value in overrides.items())
        reports.append({**report, "label": f"{source} {shown}".strip()})
    return {"results": reports, "disagreements": rank_disagreements(reports)}


def rank_disagreements(reports: list[dict], first: str = "fid", second: str = "fid_2") -> list[str]:
    """One line per pair of reports that `first` and `second` rank in opposite orders (lower is better)."""
    lines = []
    scored = [r for r in reports if first in r and second in r]
    for a, b in itertools.combinations(scored, 2):
        if (a[first] - b[first]) * (a[second] - b[second]) >= 0:
            continue
        ahead_first, ahead_second = (a, b) if a[first] < b[first] else (b, a)
        lines.append(
            f"{first} ranks {ahead_first['label']} ahead of {ahead_second['label']} "
            f"({ahead_first[first]:.3f} vs {ahead_second[first]:.3f}), {second} the other way round "
            f"({ahead_second[second]:.3f} vs {ahead_first[second]:.3f})"
        )
    return lines
