"""`train()` as `aigc train` runs it: the config's family, its in-loop evaluation, and the training loop."""

from __future__ import annotations

from pathlib import Path

from aigc.families.registry import family_of
from aigc.training import loop
from aigc.training.loop import Outcome, Start


def train(
    config,
    run_dir: str | Path,
    resume: bool = False,
    more: dict | None = None,
    start: Start | None = None,
    progress: bool = True,
    replace: bool = False,
) -> Outcome:
    """Train the config's model into `run_dir` (see `aigc.training.loop.train` for `resume`, `more`, `start`,
    `replace`)."""
    from aigc.evaluation.evaluate import in_loop_evaluator

    return loop.train(
        family_of(config),
        config,
        run_dir,
        resume=resume,
        more=more,
        start=start,
        evaluator=in_loop_evaluator,
        progress=progress,
        replace=replace,
    )
