"""Data parallelism on torch.distributed, launched by torchrun. Every process (rank) holds the whole model and
data set, works on its slice of each global batch, and averages gradients with one all_reduce per optimiser
step, so all ranks keep identical weights, optimiser states and EMA. Generation for evaluation is split by seed
and the features gathered back in seed order. Without a process group (the plain CLI) each helper is the
single-process identity.

Gradients are averaged explicitly after backward (as StyleGAN2-ADA does) rather than by DistributedDataParallel's
hooks: a GAN step runs D three times per update and takes R1's double backward, which DDP's reducer gets wrong
(pytorch/pytorch#47562); one explicit all_reduce serves both families and gradient accumulation alike.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from aigc.core.errors import LostProcesses

TIMEOUT_ENV = "AIGC_DIST_TIMEOUT"  # seconds a collective may wait for the other ranks before the job fails
DEFAULT_TIMEOUT = 600.0


def launched() -> bool:
    """Whether torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextmanager
def process_group():
    """Join torchrun's process group for the duration: NCCL with one GPU per rank (LOCAL_RANK) where CUDA is
    available, gloo on CPUs. Outside torchrun, nothing."""
    if not launched() or dist.is_initialized():
        yield
        return
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT)))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    try:
        yield
        # The ranks leave together: one that tore gloo down while rank 0 still wrote its last checkpoint was
        # seen to abort now and then ("terminate called without an active exception").
        barrier()
    finally:
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0 alone writes config, checkpoints, samples and logs."""
    return rank() == 0


def device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def _collective(operation, *args, **kwargs):
    """Run a torch.distributed collective. One that fails means another rank died or did not answer in time: a
    one-line LostProcesses instead of a traceback from every survivor."""
    try:
        return operation(*args, **kwargs)
    except RuntimeError as error:  # gloo raises plain RuntimeErrors, NCCL and timeouts DistErrors (subclasses)
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        reason = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0]  # without gloo's source location
        raise LostProcesses(f"lost contact with the other processes: {reason}; the job stops") from None


def barrier() -> None:
    if dist.is_initialized():
        _collective(dist.barrier)


def mean(values: torch.Tensor) -> torch.Tensor:
    """The average of `values` over ranks (every rank gets it)."""
    return _reduced(values.detach().float(), dist.ReduceOp.SUM) / world_size()


def maximum(values: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum of `values` over ranks (every rank gets it)."""
    return _reduced(values, dist.ReduceOp.MAX)


def _reduced(values: torch.Tensor, op) -> torch.Tensor:
    if world_size() == 1:
        return values
    reduced = values.to(device(), copy=True)  # NCCL reduces only what lies on the rank's GPU
    _collective(dist.all_reduce, reduced, op=op)
    return reduced.to(values.device)


def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Replace each gradient by its average over ranks, in one all_reduce. A parameter without a gradient on
    this rank counts as a zero gradient, so every rank reduces the same layout."""
    if world_size() == 1:
        return
    parameters = [p for p in parameters if p.requires_grad]
    for p in parameters:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    _average_in_place([p.grad for p in parameters])


def average_running_statistics(modules: Iterable[torch.nn.Module]) -> None:
    """Average BatchNorm's running statistics (the only buffers that depend on a rank's data) over ranks, so the
    EMA model, which copies them, draws the same images on every rank."""
    if world_size() == 1:
        return
    buffers = [
        buffer
        for module in modules
        for name, buffer in module.named_buffers()
        if name.rsplit(".", 1)[-1] in ("running_mean", "running_var")
    ]
    if buffers:
        _average_in_place(buffers)


def _average_in_place(tensors: list[torch.Tensor]) -> None:
    """Each tensor replaced by its average over ranks, all in one all_reduce."""
    flat = torch.cat([t.flatten() for t in tensors])
    _collective(dist.all_reduce, flat)
    flat /= world_size()
    for t, part in zip(tensors, flat.split([t.numel() for t in tensors]), strict=True):
        t.copy_(part.view_as(t))


def broadcast_modules(modules: Iterable[torch.nn.Module]) -> None:
    """Rank 0's parameters and buffers on every rank."""
    if world_size() == 1:
        return
    for module in modules:
        for tensor in module.state_dict().values():
            _collective(dist.broadcast, tensor, 0)


def stream_seed(*key: int) -> int:
    """A seed for the random stream named by `key`, e.g. (run seed, step, kind, micro-batch): the noise and
    augmentation of every image are then a function of its place in the run, whatever the number of ranks, and
    a resumed run needs no RNG state."""
    return int(np.random.SeedSequence(key).generate_state(1, np.uint64)[0])


def shard(items: range) -> range:
    """This rank's contiguous share of `items` (shares differ in length by at most one)."""
    start, length = _share(len(items), rank())
    return items[start : start + length]


def gather(local: torch.Tensor, total: int) -> torch.Tensor:
    """Concatenate every rank's `local` rows (its `shard` of `total` rows) in rank order; every rank gets the
    whole."""
    if world_size() == 1:
        return local
    lengths = [_share(total, r)[1] for r in range(world_size())]
    padded = torch.zeros((max(lengths), *local.shape[1:]), dtype=local.dtype, device=device())
    padded[: len(local)] = local.to(device())
    parts = [torch.empty_like(padded) for _ in lengths]
    _collective(dist.all_gather, parts, padded)
    return torch.cat([part[:length] for part, length in zip(parts, lengths, strict=True)]).to(local.device)


def _share(total: int, r: int) -> tuple[int, int]:
    """(start, length) of rank r's share of `total` items."""
    per_rank, extra = divmod(total, world_size())
    return r * per_rank + min(r, extra), per_rank + (r < extra)
