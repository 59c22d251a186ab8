"""The training loop, in phases: set up the run directory and model, restore a checkpoint, then step until the
budget (images or minutes) is spent or a signal asks to stop, snapshotting as it goes.

Progress is counted in images seen (`nimg`); data order, noise and augmentation are functions of the seed and
of `nimg`, and every RNG state is checkpointed, so a resumed run continues exactly as if never stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from tqdm import tqdm

from aigc.config import RunConfig, to_json
from aigc.data.augment import random_flip
from aigc.data.datasets import ImageDataset, load_dataset
from aigc.errors import UserError
from aigc.models.diffusion import build_denoiser, resolve_unet
from aigc.sampling.pipeline import generate
from aigc.training.checkpoint import latest_checkpoint, load_checkpoint, load_state, save_checkpoint, save_weights
from aigc.training.ema import EMA, ema_beta
from aigc.training.losses import make_loss
from aigc.training.optim import learning_rate, make_optimizer
from aigc.utils.images import save_grid, to_model_space
from aigc.utils.io import atomic_write_text


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
    """Fill in what the data decides: image size, channels, classes; and the U-Net preset's numbers."""
    channels, height, width = dataset.image_shape
    if height != width:
        raise UserError(f"images are {height}x{width}; only square images are supported (set --image-size)")
    conditional = config.model.class_conditional and dataset.labels is not None
    model = dataclasses.replace(
        config.model,
        image_size=height,
        channels=channels,
        num_classes=dataset.num_classes if conditional else 0,
    )
    model = dataclasses.replace(model, unet=resolve_unet(model))
    return dataclasses.replace(config, model=model)


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


def train(config: RunConfig, run_dir: str | Path, resume: bool = False, progress: bool = True) -> Outcome:
    """Train a diffusion model into `run_dir`; with `resume`, continue from its newest complete checkpoint.

    `config` must already hold the run's budget (`train.kimg` / `train.minutes`) as totals.
    """
    run_dir = Path(run_dir)
    tc = config.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    # Phase 1: data and model.
    dataset = load_dataset(config.data)
    config = resolve_model(config, dataset)
    torch.manual_seed(tc.seed)
    denoiser = build_denoiser(config.model).to(device)
    if tc.memory_format == "channels_last":
        denoiser = denoiser.to(memory_format=torch.channels_last)
    ema = EMA(denoiser)
    optimizer = make_optimizer(denoiser.parameters(), tc)
    loss_fn = make_loss(config.loss, denoiser)
    images = dataset.images.to(device)
    labels = dataset.labels.to(device) if config.model.num_classes else None
    order = DataOrder(len(images), tc.seed)
    generator = torch.Generator(device).manual_seed(tc.seed)
    step, nimg, train_seconds = 0, 0, 0.0
    best_fid = math.inf
    last_path = None
    evaluator = None
    if tc.eval_every_kimg:
        from aigc.evaluation.evaluate import InLoopEvaluator

        evaluator = InLoopEvaluator(config.data.name, config.data.data_dir, tc.eval_n, dataset.labels is not None)

    # Phase 2: restore, or start a fresh run directory.
    if resume:
        weights = latest_checkpoint(run_dir, need_state=True)
        checkpoint, state = load_checkpoint(weights), load_state(weights)
        denoiser.load_state_dict(checkpoint.model)
        ema.model.load_state_dict(checkpoint.ema)
        optimizer_state = state["optimizer"]
        optimizer_state["state"] = {int(k): v for k, v in optimizer_state["state"].items()}
        optimizer.load_state_dict(optimizer_state)
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        step, nimg, train_seconds = checkpoint.step, checkpoint.nimg, state["train_seconds"]
        best_fid = state.get("best_fid", math.inf)
        last_path = weights
        print(f"resuming {run_dir} from {weights.name} at {nimg / 1000:.1f} kimg")
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.json", to_json(config))

    def budget_spent() -> bool:
        return (tc.kimg is not None and nimg >= tc.kimg * 1000) or (
            tc.minutes is not None and train_seconds >= tc.minutes * 60
        )

    def evaluate_ema() -> None:
        nonlocal best_fid
        values = evaluator(ema.model, config.sample)
        tracker.log(step, {**values, "kimg": nimg / 1000})
        if values["fid"] < best_fid:
            best_fid = values["fid"]
            best = run_dir / "checkpoints" / "best.safetensors"
            save_weights(best, config, denoiser, ema.model, step, nimg, extra={"fid": str(best_fid)})

    def snapshot() -> Path:
        state = {
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "train_seconds": train_seconds,
            "best_fid": best_fid,
        }
        path = save_checkpoint(run_dir, config, denoiser, ema.model, step, nimg, state)
        grid = generate(ema.model, range(tc.grid_size), sample=config.sample, device=device)
        save_grid(grid, run_dir / "samples" / f"{step:06d}.png")
        return path

    # Phase 3: optimise.
    autocast = torch.autocast(device.type, torch.bfloat16) if tc.precision == "bf16" else nullcontext()
    tracker = Tracker(run_dir)
    bar = tqdm(
        total=tc.kimg * 1000 if tc.kimg is not None else tc.minutes * 60,
        initial=nimg if tc.kimg is not None else train_seconds,
        unit="img" if tc.kimg is not None else "s",
        unit_scale=True,
        disable=not progress,
        desc=f"train {run_dir.name}",
    )
    log_every = max(1, 1000 // tc.batch)
    window_loss, window_images, window_seconds = 0.0, 0, 0.0
    next_snapshot = next_multiple(nimg, tc.snapshot_kimg)
    next_eval = next_multiple(nimg, tc.eval_every_kimg) if evaluator else math.inf
    with StopRequest().installed() as stop:
        while not budget_spent() and stop.signal_name is None:
            started = time.perf_counter()
            denoiser.train()
            index = order.indices(nimg, tc.batch).to(device)
            y = to_model_space(images[index])
            if config.data.flip:
                y = random_flip(y, generator)
            if tc.memory_format == "channels_last":
                y = y.contiguous(memory_format=torch.channels_last)
            with autocast:
                loss = loss_fn(denoiser, y, None if labels is None else labels[index], generator).mean()
            if not torch.isfinite(loss):
                raise UserError(
                    f"loss became {loss.item()} at step {step}; the last good checkpoint is kept - "
                    "lower --lr or raise --warmup-kimg and resume"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(tc, nimg)
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(denoiser.parameters(), tc.grad_clip)
            optimizer.step()
            step, nimg = step + 1, nimg + tc.batch
            ema.update(denoiser, ema_beta(tc.batch, nimg, tc.ema_halflife_kimg, tc.ema_rampup))

            seconds = time.perf_counter() - started
            train_seconds += seconds
            window_loss += loss.item() * tc.batch
            window_images += tc.batch
            window_seconds += seconds
            bar.update(tc.batch if tc.kimg is not None else seconds)
            if step % log_every == 0:
                values = {
                    "loss": window_loss / window_images,
                    "lr": learning_rate(tc, nimg),
                    "kimg": nimg / 1000,
                    "img_per_s": window_images / window_seconds,
                    "train_seconds": train_seconds,
                }
                tracker.log(step, values)
                bar.set_postfix(
                    loss=f"{values['loss']:.4f}", kimg=f"{nimg / 1000:.1f}", ips=f"{values['img_per_s']:.0f}"
                )
                window_loss, window_images, window_seconds = 0.0, 0, 0.0
            if nimg >= next_eval:
                evaluate_ema()
                next_eval = next_multiple(nimg, tc.eval_every_kimg)
            if nimg >= next_snapshot:
                last_path = snapshot()
                next_snapshot = next_multiple(nimg, tc.snapshot_kimg)
        if last_path is None or checkpoint_step(last_path) != step:
            last_path = snapshot()
    bar.close()
    tracker.close()
    return Outcome(run_dir, last_path, step, nimg, stop.signal_name)


def next_multiple(nimg: int, every_kimg: float) -> float:
    """The first multiple of `every_kimg` thousand images beyond `nimg`."""
    every = every_kimg * 1000
    return (math.floor(nimg / every) + 1) * every


def checkpoint_step(path: Path) -> int:
    return int(path.name.split(".")[0])


def report(outcome: Outcome) -> None:
    if outcome.interrupted_by:
        print(
            f"stopped by {outcome.interrupted_by} at {outcome.nimg / 1000:.1f} kimg; checkpoint {outcome.checkpoint}\n"
            f"resume with: aigc train diffusion --resume {outcome.run_dir}",
            file=sys.stderr,
        )
    else:
        print(f"done: {outcome.nimg / 1000:.1f} kimg; checkpoint {outcome.checkpoint}")
