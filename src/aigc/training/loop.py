"""The training loop, for every family, in phases: data and model from the family; where to start (fresh, a
checkpoint, or weights in memory); the run directory's files; then steps until the budget (images, tokens or
minutes) is spent or a signal asks to stop, logging, evaluating and snapshotting as it goes.

Progress is counted in what the family's budget counts (`seen`: images, or tokens - an example of a language
model is a window of tokens); the data order is a function of the seed and the examples seen, and the noise
and augmentation of each micro-batch a function of the seed, the step and the micro-batch's place in the global
batch, so a resumed run continues exactly as if never stopped - under torchrun too, where each rank takes its
slice of every global batch (core/distributed.py) and only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch
from tqdm import tqdm

from aigc.core import distributed
from aigc.core.checkpoint import (
    latest_checkpoint,
    load_state,
    read_checkpoint,
    save_checkpoint,
    save_weights,
    weights_path,
)
from aigc.core.config import to_json
from aigc.core.device import resolved_precision
from aigc.core.environment import describe_environment
from aigc.core.errors import Diverged, UserError
from aigc.core.io import atomic_write_bytes, atomic_write_text
from aigc.models.compression import keep_pruned, pruned_masks
from aigc.training.batch import Batch, DataOrder, TrainingData
from aigc.training.optim import split_batch
from aigc.training.signals import StopRequest
from aigc.training.tracker import Tracker

NOISE_STREAM, DROPOUT_STREAM = 0, 1  # keys that keep the two kinds of per-step random streams apart

# (sampling model, sample settings) -> {"fid": ..., ...}: the in-loop evaluation of a run; the family's
# `selection_metric` among its values (lower is better) picks the best checkpoint
Evaluator = Callable[[torch.nn.Module, object], dict]


class Trainer(Protocol):
    """What a family's trainer is to the loop."""

    modules: dict[str, torch.nn.Module]  # what a checkpoint holds, by name
    optimizers: dict[str, torch.optim.Optimizer]  # what its train state holds, by name
    sampling_model: torch.nn.Module  # what snapshots and in-loop evaluations draw from

    def step(self, batches: list[Batch], position: Position) -> dict[str, float]:
        """One optimiser step on this rank's micro-batches at `position` (before the step); the values to log
        (losses, "lr"), the same on every rank."""


@dataclasses.dataclass
class Position:
    """How far a run has come: what a checkpoint's train state restores."""

    step: int = 0
    seen: int = 0  # in the family's unit: images, or tokens
    train_seconds: float = 0.0
    best: float = math.inf  # the lowest in-loop value of the family's selection metric


@dataclasses.dataclass
class Start:
    """Weights to start from instead of a fresh initialisation ({module name: state dict}, as a checkpoint
    holds them), at a position; the optimisers start afresh (fine-tuning a compressed model)."""

    modules: dict[str, dict[str, torch.Tensor]]
    step: int
    seen: int


@dataclasses.dataclass
class Outcome:
    run_dir: Path
    checkpoint: Path
    step: int
    seen: int
    interrupted_by: str | None
    family: str


def train(
    family,
    config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    more: dict | None = None,
    start: Start | None = None,
    evaluator: Callable[[object], Evaluator] | None = None,
    progress: bool = True,
    replace: bool = False,
) -> Outcome:
    """Train `family`'s model as `config` says into `run_dir`. `resume`: continue from the run's newest complete
    checkpoint (read once), with `more` budget when given (train config fields among its `budget_fields`, added
    to what the run has done); `start`: from weights in memory. `config` holds the budget as totals.
    `evaluator(config)` makes the in-loop evaluation when the config asks for one. `replace`: what `run_dir`
    holds is deleted once the data and the model are ready (so a refused data set or config loses nothing).

    A diverging run (non-finite loss, collapsed discriminator) stops with a checkpoint of its last good state
    and raises `Diverged`.
    """
    run_dir = Path(run_dir)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    device = distributed.device()
    micro, accumulation = split_batch(config.train, distributed.world_size())

    # Phase 1: data and model.
    config, data = family.training_data(config)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, batch_per_device=micro))
    torch.manual_seed(config.train.seed)
    trainer = family.trainer(config, device, fresh=not resume and start is None)

    # Phase 2: where to start.
    position = Position()
    if resume:
        position, config = restore(family, trainer, run_dir, config, more)
    elif start is not None:
        for name, module in trainer.modules.items():
            module.load_state_dict(start.modules[name])
        position = Position(step=start.step, seen=start.seen)
    distributed.broadcast_modules(trainer.modules.values())  # one starting point, whatever each rank read
    if distributed.is_main():
        if replace and run_dir.exists():
            shutil.rmtree(run_dir)
        write_run_files(family, run_dir, config, device, position)

    # Phase 3: optimise.
    in_loop = evaluator(config) if evaluator is not None and config.train.eval_every else None
    batches = Batches(data.to(device), config.train, family.example_size(config), micro, accumulation)
    session = Session(family, config, run_dir, trainer, batches, position, in_loop)
    session.last_snapshot = position.step if resume else None  # the checkpoint on disk it started from
    return session.run(progress)


def restore(family, trainer, run_dir: Path, config, more: dict | None):
    """(position, config) of a resumed run: the trainer loaded from the newest complete checkpoint and its
    state, and the config's budget extended by `more`."""
    weights = latest_checkpoint(run_dir, need_state=True)
    checkpoint, state = read_checkpoint(weights), load_state(weights)
    for name, module in trainer.modules.items():
        module.load_state_dict(checkpoint.modules[name])
    for name, optimizer in trainer.optimizers.items():
        optimizer_state = state["optimizers"][name]
        optimizer_state["state"] = {int(k): v for k, v in optimizer_state["state"].items()}
        optimizer.load_state_dict(optimizer_state)
    best = state.get("best", state.get("best_fid", math.inf))  # aigc 0.2 and before kept the best FID
    position = Position(checkpoint.step, checkpoint.seen, state["train_seconds"], best)
    if more is not None:
        config = dataclasses.replace(config, train=config.train.extended(position.seen, position.train_seconds, more))
    if distributed.is_main():
        print(f"resuming {run_dir} from {weights.name} at {family.amount(position.seen)}")
    return position, config


def write_run_files(family, run_dir: Path, config, device: torch.device, position: Position) -> None:
    """config.json (the resolved config), the family's own files (a tokenizer) and a line of environment.jsonl
    per training session."""
    try:
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create run directory {run_dir} ({error.strerror}); choose a writable --out") from None
    atomic_write_text(run_dir / "config.json", to_json(config))
    for name, text in family.run_files(config).items():
        atomic_write_text(run_dir / name, text)
    precision = resolved_precision(config.train.precision, device)
    environment = describe_environment(device, distributed.world_size(), precision)
    with open(run_dir / "environment.jsonl", "a") as f:  # a resume adds one
        f.write(json.dumps({**family.progress(position.seen), **environment}) + "\n")


class Batches:
    """What each step trains on: this rank's slice of the global batch at the run's place in the data order, as
    micro-batches, each with its own noise stream."""

    def __init__(self, data: TrainingData, train, example_size: int, micro: int, accumulation: int):
        self.data, self.train, self.micro, self.accumulation = data, train, micro, accumulation
        self.example_size = example_size  # in the family's unit: 1 image, or a window's tokens
        self.device, self.rank = distributed.device(), distributed.rank()
        self.order = DataOrder(len(data.examples), train.seed)
        self.generators = [torch.Generator(self.device) for _ in range(accumulation)]

    def __call__(self, position: Position) -> list[Batch]:
        tc, step, share = self.train, position.step, self.micro * self.accumulation
        first = position.seen // self.example_size
        index = self.order.indices(first, tc.batch)[self.rank * share : (self.rank + 1) * share]
        index = index.to(self.device)
        torch.manual_seed(distributed.stream_seed(tc.seed, step, DROPOUT_STREAM, self.rank))
        batches = []
        for i, (part, generator) in enumerate(zip(index.split(self.micro), self.generators, strict=True)):
            stream = self.rank * self.accumulation + i
            generator.manual_seed(distributed.stream_seed(tc.seed, step, NOISE_STREAM, stream))
            data = self.data.prepare(self.data.examples[part], generator)
            condition = None if self.data.conditions is None else self.data.conditions[part]
            batches.append(Batch(data, condition, generator))
        return batches


class Session:
    """One training session's steps: logging, in-loop evaluation and snapshots."""

    def __init__(self, family, config, run_dir: Path, trainer, batches: Batches, position: Position, in_loop):
        self.family, self.config, self.run_dir, self.trainer = family, config, run_dir, trainer
        self.batches, self.position, self.in_loop = batches, position, in_loop
        self.device, self.main = distributed.device(), distributed.is_main()
        # a pruned model being fine-tuned (aigc compress --finetune-kimg) keeps its zeros through every step
        self.masks = pruned_masks(trainer.modules.values()) if config.compression.prune else []
        self.last_snapshot: int | None = None  # the step of the newest checkpoint on disk
        self.tracker: Tracker | None = None

    def budget_spent(self) -> bool:
        tc, p = self.config.train, self.position
        return (tc.budget is not None and p.seen >= tc.budget) or (
            tc.minutes is not None and p.train_seconds >= tc.minutes * 60
        )

    def run(self, progress: bool) -> Outcome:
        tc = self.config.train
        self.tracker = Tracker(self.run_dir) if self.main else None
        by_amount = tc.budget is not None
        bar = tqdm(
            total=tc.budget if by_amount else tc.minutes * 60,
            initial=self.position.seen if by_amount else self.position.train_seconds,
            unit=self.family.unit if by_amount else "s",
            unit_scale=True,
            disable=not (progress and self.main),
            desc=f"train {self.run_dir.name}",
        )
        stop = StopRequest()
        try:
            with stop.installed():
                stopped_by_peer = self.steps(bar, stop)
            if self.last_snapshot != self.position.step:
                self.snapshot()
        except Diverged as error:
            raise self.diverged(error) from None
        finally:
            bar.close()
            if self.tracker:
                self.tracker.close()
        interrupted_by = stop.signal_name or ("a signal to another process" if stopped_by_peer else None)
        checkpoint = weights_path(self.run_dir, self.position.step)
        p = self.position
        return Outcome(self.run_dir, checkpoint, p.step, p.seen, interrupted_by, self.family.name)

    def steps(self, bar, stop: StopRequest) -> bool:
        """Step until the budget is spent or a rank is signalled; whether another rank's signal stopped it."""
        tc, p = self.config.train, self.position
        per_step = tc.batch * self.batches.example_size
        log_every = max(1, 1000 // tc.batch)
        window = Window()
        next_snapshot = next_multiple(p.seen, tc.snapshot_every)
        next_eval = next_multiple(p.seen, tc.eval_every) if self.in_loop else math.inf
        while not self.budget_spent():
            started = time.perf_counter()
            values = self.trainer.step(self.batches(p), p)
            keep_pruned(self.masks)
            distributed.average_running_statistics(m for name, m in self.trainer.modules.items() if name != "ema")
            p.step, p.seen = p.step + 1, p.seen + per_step

            # The ranks agree on the time spent (the slowest one's) and on stopping when any was signalled.
            agreed = torch.tensor([time.perf_counter() - started, float(stop.signal_name is not None)])
            seconds, signalled = distributed.maximum(agreed).tolist()
            p.train_seconds += seconds
            window.add(values, per_step, seconds)
            bar.update(per_step if tc.budget is not None else seconds)
            if p.step % log_every == 0:
                self.log(window, bar)
                window = Window()
            # a run is also scored as its budget ends, before its last snapshot (so that checkpoint may be the
            # best, and a classifier's is calibrated)
            if p.seen >= next_eval or (self.in_loop and self.budget_spent()):
                self.evaluate()
                next_eval = next_multiple(p.seen, tc.eval_every)
            if p.seen >= next_snapshot:
                self.snapshot()
                next_snapshot = next_multiple(p.seen, tc.snapshot_every)
            if signalled > 0:
                self.log_rest(window, bar)
                return stop.signal_name is None
        self.log_rest(window, bar)
        return False

    def log_rest(self, window: Window, bar) -> None:
        """The steps since the last log line, when a session ends (a short run logs something)."""
        if window.seconds:
            self.log(window, bar)

    def log(self, window: Window, bar) -> None:
        averages, rate = window.averages(), window.amount / window.seconds
        p, unit = self.position, self.family.unit
        if self.tracker:
            progress = self.family.progress(p.seen)
            self.tracker.log(p.step, {**averages, **progress, f"{unit}_per_s": rate, "train_seconds": p.train_seconds})
        shown = {key: f"{value:.4f}" for key, value in averages.items() if key.startswith("loss")}
        bar.set_postfix(**shown, **{unit + "/s": f"{rate:.0f}"})

    def evaluate(self) -> None:
        """The in-loop metrics of the sampling model; a new best of the family's selection metric keeps its
        weights as best.safetensors."""
        values = self.in_loop(self.trainer.sampling_model, self.config.sample)  # every rank draws its share
        if not self.main:
            return
        p, metric = self.position, self.family.selection_metric
        self.tracker.log(p.step, {**values, **self.family.progress(p.seen)})
        if values[metric] < p.best:
            p.best = values[metric]
            best = self.run_dir / "checkpoints" / "best.safetensors"
            save_weights(best, self.config, self.trainer.modules, p.step, p.seen, extra={metric: str(p.best)})

    def snapshot(self) -> None:
        """A checkpoint with its train state, and the samples of the fixed seeds (a grid, texts)."""
        p = self.position
        self.last_snapshot = p.step
        if not self.main:
            return
        state = {
            "optimizers": {name: optimizer.state_dict() for name, optimizer in self.trainer.optimizers.items()},
            "train_seconds": p.train_seconds,
            "best": p.best,
        }
        save_checkpoint(self.run_dir, self.config, self.trainer.modules, p.step, p.seen, state)
        model, stem = self.trainer.sampling_model, self.run_dir / "samples" / f"{p.step:06d}"
        for name, data in self.family.checkpoint_files(model, self.config).items():
            (self.run_dir / "checkpoints" / name).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.run_dir / "checkpoints" / name, data)
        self.family.save_samples(model, self.config, self.device, stem)

    def diverged(self, error):
        """The error to raise for a diverged run, after checkpointing the last good state when memory holds it
        (the failing step applied no update); otherwise the newest checkpoint on disk is that state."""
        if error.intact and all_finite(self.trainer.modules.values()):
            self.snapshot()
        where = "no checkpoint was written yet"
        if self.last_snapshot is not None:
            where = f"the last good state is {weights_path(self.run_dir, self.last_snapshot)}"
        return Diverged(f"{error}; {where}; start a new run with {self.family.remedy}")


class Window:
    """Averages of the logged values over the steps since the last log line."""

    def __init__(self):
        self.sums: dict[str, tuple[float, int]] = {}
        self.amount, self.seconds = 0, 0.0  # in the family's unit

    def add(self, values: dict[str, float], amount: int, seconds: float) -> None:
        for key, value in values.items():  # some values (R1) come only every few steps
            total, count = self.sums.get(key, (0.0, 0))
            self.sums[key] = (total + value, count + 1)
        self.amount, self.seconds = self.amount + amount, self.seconds + seconds

    def averages(self) -> dict[str, float]:
        return {key: total / count for key, (total, count) in self.sums.items()}


def all_finite(modules) -> bool:
    return all(bool(torch.isfinite(p).all()) for module in modules for p in module.parameters())


def next_multiple(seen: int, every: float) -> float:
    """The first multiple of `every` beyond `seen`."""
    return (math.floor(seen / every) + 1) * every


def report(family, outcome: Outcome) -> None:
    amount = family.amount(outcome.seen)
    if outcome.interrupted_by:
        print(
            f"stopped by {outcome.interrupted_by} at {amount}; checkpoint {outcome.checkpoint}\n"
            f"resume with: aigc train {outcome.family} --resume {outcome.run_dir}",
            file=sys.stderr,
        )
    else:
        print(f"done: {amount}; checkpoint {outcome.checkpoint}")
        print(f"look at it with: aigc report {outcome.run_dir}")
