"""The training loop, in phases: set up the run directory and model, restore a checkpoint, then step until the
budget (images or minutes) is spent or a signal asks to stop, snapshotting as it goes.

Progress is counted in images seen (`nimg`); the data order is a function of the seed and `nimg`, and the noise
and augmentation of each micro-batch a function of the seed, the step and the micro-batch's place in the global
batch, so a resumed run continues exactly as if never stopped - under torchrun too, where each rank takes its
slice of every global batch (training/distributed.py) and only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm import tqdm

from aigc.config import RunConfig, to_json
from aigc.data.augment import random_flip
from aigc.data.datasets import ImageDataset, load_dataset
from aigc.errors import Diverged, UserError
from aigc.models.diffusion import ModelConfig, resolve_unet
from aigc.models.optimize import keep_pruned, pruned_masks
from aigc.sampling.pipeline import generate
from aigc.training import distributed
from aigc.training.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_state,
    save_checkpoint,
    save_weights,
    weights_path,
)
from aigc.training.optim import MicroBatch, learning_rate, resolved_precision, split_batch
from aigc.utils.environment import describe_environment
from aigc.utils.images import save_grid, to_model_space
from aigc.utils.io import atomic_write_text

NOISE_STREAM, DROPOUT_STREAM = 0, 1  # keys that keep the two kinds of per-step random streams apart


class DataOrder:
    """Shuffled passes over N items: epoch e is a permutation seeded by (seed, e), so the items of any stretch
    of training are a pure function of the position in the stream."""

    def __init__(self, num_items: int, seed: int):
        self.num_items, self.seed = num_items, seed
        self._epoch, self._permutation = -1, None

    def _epoch_permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._permutation = epoch, torch.randperm(self.num_items, generator=generator)
        return self._permutation

    def indices(self, start: int, count: int) -> torch.Tensor:
        parts = []
        while count > 0:
            epoch, offset = divmod(start, self.num_items)
            take = min(count, self.num_items - offset)
            parts.append(self._epoch_permutation(epoch)[offset : offset + take])
            start, count = start + take, count - take
        return torch.cat(parts)


def resolve_model(config: RunConfig, dataset: ImageDataset) -> RunConfig:
    """Fill in what the data decides: image size, channels, classes; and a U-Net preset's numbers."""
    channels, height, width = dataset.image_shape
    if height != width:
        raise UserError(f"images are {height}x{width}; only square images are supported (set --image-size)")
    conditional = config.model.class_conditional and dataset.labels is not None
    if config.model.class_conditional and dataset.labels is None and config.method == "gan":
        raise UserError(f"--conditional needs labels, and {config.data.name} has none; drop --conditional")
    model = dataclasses.replace(
        config.model,
        image_size=height,
        channels=channels,
        num_classes=dataset.num_classes if conditional else 0,
    )
    if isinstance(model, ModelConfig):
        model = dataclasses.replace(model, unet=resolve_unet(model))
    return dataclasses.replace(config, model=model)


def make_trainer(config: RunConfig, device: torch.device):
    """The method's trainer: `modules` (checkpointed, with the EMA model as "ema"), `optimizers`,
    `sampling_model`, and `step(images, labels, step, nimg, generator) -> {name: value}`."""
    if config.method == "gan":
        from aigc.training.gan import GANTrainer

        return GANTrainer(config, device)
    from aigc.training.diffusion import DiffusionTrainer

    return DiffusionTrainer(config, device)


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step, so the step in flight completes."""

    def __init__(self):
        self.signal_name: str | None = None

    def __call__(self, signum, frame):
        self.signal_name = signal.Signals(signum).name

    @contextmanager
    def installed(self):
        previous = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


class Tracker:
    """metrics.jsonl (always) and TensorBoard (when installed)."""

    def __init__(self, run_dir: Path):
        self.file = open(run_dir / "metrics.jsonl", "a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(run_dir / "tb"))
        except ImportError:
            print("notice: tensorboard not installed, logging to metrics.jsonl only (pip install 'aigc[tensorboard]')")
            self.tensorboard = None

    def log(self, step: int, values: dict) -> None:
        self.file.write(json.dumps({"step": step, **values}) + "\n")
        self.file.flush()
        if self.tensorboard:
            for key, value in values.items():
                self.tensorboard.add_scalar(key, value, step)

    def close(self) -> None:
        self.file.close()
        if self.tensorboard:
            self.tensorboard.close()


@dataclasses.dataclass
class Outcome:
    run_dir: Path
    checkpoint: Path
    step: int
    nimg: int
    interrupted_by: str | None
    method: str


def train(config: RunConfig, run_dir: str | Path, resume: bool = False, progress: bool = True) -> Outcome:
    """Train the config's model (diffusion or GAN) into `run_dir`; with `resume`, continue from its newest
    complete checkpoint. `config` must already hold the run's budget (`train.kimg` / `train.minutes`) as totals.

    A diverging run (non-finite loss, collapsed discriminator) stops with a checkpoint of its last good state
    and raises `Diverged`.
    """
    run_dir = Path(run_dir)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    device, rank, main = distributed.device(), distributed.rank(), distributed.is_main()
    micro, accumulation = split_batch(config.train, distributed.world_size())
    share = micro * accumulation  # this rank's slice of each global batch

    # Phase 1: data and model.
    dataset = load_dataset(config.data)
    config = resolve_model(config, dataset)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, batch_per_device=micro))
    tc = config.train
    torch.manual_seed(tc.seed)
    trainer = make_trainer(config, device)
    images = dataset.images.to(device)
    labels = dataset.labels.to(device) if config.model.num_classes else None
    order = DataOrder(len(images), tc.seed)
    generators = [torch.Generator(device) for _ in range(accumulation)]
    step, nimg, train_seconds = 0, 0, 0.0
    best_fid = math.inf
    last_step = None
    evaluator = None
    if tc.eval_every_kimg:
        from aigc.evaluation.evaluate import InLoopEvaluator

        evaluator = InLoopEvaluator(config.data.name, config.data.data_dir, tc.eval_n, dataset.labels is not None)

    # Phase 2: restore, or start a fresh run directory.
    if resume:
        weights = latest_checkpoint(run_dir, need_state=True)
        checkpoint, state = load_checkpoint(weights), load_state(weights)
        for name, module in trainer.modules.items():
            module.load_state_dict(checkpoint.modules[name])
        for name, optimizer in trainer.optimizers.items():
            optimizer_state = state["optimizers"][name]
            optimizer_state["state"] = {int(k): v for k, v in optimizer_state["state"].items()}
            optimizer.load_state_dict(optimizer_state)
        step, nimg, train_seconds = checkpoint.step, checkpoint.nimg, state["train_seconds"]
        best_fid = state.get("best_fid", math.inf)
        last_step = step
        if main:
            print(f"resuming {run_dir} from {weights.name} at {nimg / 1000:.1f} kimg")
    distributed.broadcast_modules(trainer.modules.values())  # one starting point, whatever each rank read
    # a pruned model being fine-tuned (aigc optimize --finetune-kimg) keeps its zeros through every step
    masks = pruned_masks(trainer.modules.values()) if config.optimization.prune else []
    if main:
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", to_json(config))
        environment = describe_environment(device, distributed.world_size(), resolved_precision(tc, device))
        with open(run_dir / "environment.jsonl", "a") as f:  # one line per training session (a resume adds one)
            f.write(json.dumps({"kimg": nimg / 1000, **environment}) + "\n")

    def budget_spent() -> bool:
        return (tc.kimg is not None and nimg >= tc.kimg * 1000) or (
            tc.minutes is not None and train_seconds >= tc.minutes * 60
        )

    def micro_batches() -> list[MicroBatch]:
        """This rank's slice of the global batch at `nimg`, as micro-batches, each with its own noise stream."""
        index = order.indices(nimg, tc.batch)[rank * share : (rank + 1) * share].to(device)
        torch.manual_seed(distributed.stream_seed(tc.seed, step, DROPOUT_STREAM, rank))
        batches = []
        for i, (part, generator) in enumerate(zip(index.split(micro), generators, strict=True)):
            generator.manual_seed(distributed.stream_seed(tc.seed, step, NOISE_STREAM, rank * accumulation + i))
            y = to_model_space(images[part])
            if config.data.flip:
                y = random_flip(y, generator)
            if tc.memory_format == "channels_last":
                y = y.contiguous(memory_format=torch.channels_last)
            batches.append(MicroBatch(y, None if labels is None else labels[part], generator))
        return batches

    def evaluate_ema() -> None:
        nonlocal best_fid
        values = evaluator(trainer.sampling_model, config.sample)  # every rank generates its share of the seeds
        if not main:
            return
        tracker.log(step, {**values, "kimg": nimg / 1000})
        if values["fid"] < best_fid:
            best_fid = values["fid"]
            best = run_dir / "checkpoints" / "best.safetensors"
            save_weights(best, config, trainer.modules, step, nimg, extra={"fid": str(best_fid)})

    def snapshot() -> None:
        nonlocal last_step
        last_step = step
        if not main:
            return
        state = {
            "optimizers": {name: optimizer.state_dict() for name, optimizer in trainer.optimizers.items()},
            "train_seconds": train_seconds,
            "best_fid": best_fid,
        }
        save_checkpoint(run_dir, config, trainer.modules, step, nimg, state)
        grid = generate(trainer.sampling_model, range(tc.grid_size), sample=config.sample, device=device)
        save_grid(grid, run_dir / "samples" / f"{step:06d}.png")

    # Phase 3: optimise.
    tracker = Tracker(run_dir) if main else None
    bar = tqdm(
        total=tc.kimg * 1000 if tc.kimg is not None else tc.minutes * 60,
        initial=nimg if tc.kimg is not None else train_seconds,
        unit="img" if tc.kimg is not None else "s",
        unit_scale=True,
        disable=not (progress and main),
        desc=f"train {run_dir.name}",
    )
    log_every = max(1, 1000 // tc.batch)
    window: dict[str, tuple[float, int]] = {}
    window_images, window_seconds = 0, 0.0
    next_snapshot = next_multiple(nimg, tc.snapshot_kimg)
    next_eval = next_multiple(nimg, tc.eval_every_kimg) if evaluator else math.inf
    stopping = False
    try:
        with StopRequest().installed() as stop:
            while not budget_spent() and not stopping:
                started = time.perf_counter()
                values = trainer.step(micro_batches(), step, nimg)
                keep_pruned(masks)
                distributed.average_running_statistics(m for name, m in trainer.modules.items() if name != "ema")
                step, nimg = step + 1, nimg + tc.batch

                # The ranks agree on the time spent (the slowest one's) and on stopping when any was signalled.
                agreed = torch.tensor([time.perf_counter() - started, float(stop.signal_name is not None)])
                seconds, signalled = distributed.maximum(agreed).tolist()
                stopping = signalled > 0
                train_seconds += seconds
                for key, value in values.items():  # some values (R1) come only every few steps
                    total, count = window.get(key, (0.0, 0))
                    window[key] = (total + value, count + 1)
                window_images, window_seconds = window_images + tc.batch, window_seconds + seconds
                bar.update(tc.batch if tc.kimg is not None else seconds)
                if step % log_every == 0:
                    averages = {key: total / count for key, (total, count) in window.items()}
                    if tracker:
                        tracker.log(
                            step,
                            {
                                **averages,
                                "lr": learning_rate(tc, nimg),
                                "kimg": nimg / 1000,
                                "img_per_s": window_images / window_seconds,
                                "train_seconds": train_seconds,
                            },
                        )
                    shown = {key: f"{value:.4f}" for key, value in averages.items() if key.startswith("loss")}
                    bar.set_postfix(**shown, kimg=f"{nimg / 1000:.1f}", ips=f"{window_images / window_seconds:.0f}")
                    window, window_images, window_seconds = {}, 0, 0.0
                if nimg >= next_eval:
                    evaluate_ema()
                    next_eval = next_multiple(nimg, tc.eval_every_kimg)
                if nimg >= next_snapshot:
                    snapshot()
                    next_snapshot = next_multiple(nimg, tc.snapshot_kimg)
            if last_step != step:
                snapshot()
    except Diverged as error:
        # When the failing step applied no update, the weights in memory are the last good state; otherwise the
        # newest checkpoint on disk is.
        if error.intact and all_finite(trainer.modules.values()):
            snapshot()
        where = "no checkpoint was written yet"
        if last_step is not None:
            where = f"the last good state is {weights_path(run_dir, last_step)}"
        raise Diverged(f"{error}; {where}; start a new run with {trainer.remedy}") from None
    finally:
        bar.close()
        if tracker:
            tracker.close()
    interrupted_by = stop.signal_name or ("a signal to another process" if stopping else None)
    return Outcome(run_dir, weights_path(run_dir, step), step, nimg, interrupted_by, config.method)


def all_finite(modules) -> bool:
    return all(bool(torch.isfinite(p).all()) for module in modules for p in module.parameters())


def next_multiple(nimg: int, every_kimg: float) -> float:
    """The first multiple of `every_kimg` thousand images beyond `nimg`."""
    every = every_kimg * 1000
    return (math.floor(nimg / every) + 1) * every


def report(outcome: Outcome) -> None:
    if outcome.interrupted_by:
        print(
            f"stopped by {outcome.interrupted_by} at {outcome.nimg / 1000:.1f} kimg; checkpoint {outcome.checkpoint}\n"
            f"resume with: aigc train {outcome.method} --resume {outcome.run_dir}",
            file=sys.stderr,
        )
    else:
        print(f"done: {outcome.nimg / 1000:.1f} kimg; checkpoint {outcome.checkpoint}")
        print(f"look at it with: aigc report {outcome.run_dir}")
