"""The generation behind the HTTP routes. Images: one thread owns the models; requests wait in a bounded queue,
and those with the same model and sampling settings are merged into one generate() call (an image depends only
on its seed and condition, so merging never changes a picture). Text: one text engine per text model
(sampling/engine.py) on its own thread: a completion joins the running batch at the next step and leaves it when
done, its text a function of its prompt, seed and settings alone; requests are admitted while the engine has KV
slots for them, and `queue_size` more may wait. A full queue refuses at once, so overload shows as fast 503s
instead of ever-growing latency.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from aigc.assistant import Assistant, is_assistant
from aigc.assistant import load as load_assistant
from aigc.core.config import describe_fields
from aigc.families.family import Family
from aigc.families.registry import family_of, load_ensemble, load_model
from aigc.families.text import TextFamily
from aigc.sampling.engine import Engine
from aigc.serving.metrics import Metrics


@dataclass
class ServedModel:
    name: str
    model: nn.Module
    config: object  # the run config (an ensemble's: its first member's)
    path: Path  # the checkpoint file (an ensemble's: its first member's)
    ensemble: bool = False  # several runs served as one model
    assistant: Assistant | None = None  # a customer-service assistant, its generator being `model`

    @property
    def report(self) -> Path | None:
        """The run's `aigc report` page, when the checkpoint lies in a run directory that has one (an ensemble
        has no one run's page)."""
        page = self.path.parent.parent / "report.html"
        return page if self.path.parent.name == "checkpoints" and page.is_file() and not self.ensemble else None

    @property
    def family(self) -> Family:
        return family_of(self.config)

    def info(self) -> dict:
        """What a client needs to build a request (GET /v1/models): the model's sample settings with their
        defaults and bounds, its classes, and what its family adds."""
        return {
            "name": self.name,
            "family": self.family.name,
            "modality": self.family.modality,
            **self.family.info(self.model, self.config),
            "classes": self.family.num_classes(self.model),
            "conditions": self.family.conditions,
            "default_sample": dataclasses.asdict(self.config.sample),
            "settings": describe_fields(type(self.config.sample)),
            "checkpoint": self.path.name,  # the training step
            "report": self.report is not None,
            **({"assistant": self.assistant.info()} if self.assistant else {}),
        }

    def listing(self) -> dict:
        """An entry of GET /v1/models: OpenAI's fields (id, object, created, owned_by), then `info`."""
        created = int(self.path.stat().st_mtime)
        return {"id": self.name, "object": "model", "created": created, "owned_by": "aigc", **self.info()}


@dataclass
class Job:
    """One request's share of work: an output for each of `seeds`, with `conditions` (one per seed: class labels
    exactly when the model is class-conditional, a language model's prompts)."""

    model: str
    sample: object  # the model family's sample config
    seeds: list[int]
    conditions: list | None
    on_text: Callable[[int, str], None] | None = None  # text: hears completion k's new text as it is drawn
    condition_key: str = "labels"  # what a response calls the conditions: labels, or an image model's prompts
    submitted: float = field(default_factory=time.perf_counter)
    first_output: float | None = None  # text: when the first token was drawn
    cancelled: bool = False  # text: the client went away; its completions leave the batch at the next step
    encoded: dict[str, list[int]] | None = None  # text: each prompt's token ids, tokenised (and checked) once
    extension: dict = field(default_factory=dict)  # text: what the response adds to OpenAI's fields, as `aigc`
    result: Future = field(default_factory=Future)  # -> images uint8 [len(seeds), C, H, W], or Completions


class QueueFull(Exception):
    """No room for another request; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"the generation queue is full; retry in {retry_after} s")
        self.retry_after = retry_after


class NotReady(Exception):
    """The models are still loading (or failed to load)."""


class TextEngines:
    """The text engine of each text model, each on its own thread, and the text jobs handed to them."""

    def __init__(self, metrics: Metrics, queue_size: int, max_batch: int, threads: int):
        self.metrics, self.queue_size, self.max_batch, self.threads = metrics, queue_size, max_batch, threads
        self.engines: dict[str, Engine] = {}
        self.threads_running: list[threading.Thread] = []

    def start(self, served: ServedModel) -> None:
        """The text engine of a text model, on its own thread."""
        occupancy, rate = self.metrics.occupancy.labels(served.name), self.metrics.token_rate.labels(served.name)
        last = [time.perf_counter(), 0.0]  # when the last step ended; tokens a second, smoothed

        def on_step(active: int, tokens: int) -> None:
            now = time.perf_counter()
            last[1] = 0.9 * last[1] + 0.1 * tokens / max(now - last[0], 1e-6)
            last[0] = now
            occupancy.set(active / self.max_batch)
            rate.set(last[1])

        engine = served.family.engine(served.model, self.max_batch, on_step)
        thread = threading.Thread(target=self._run, args=(engine,), name=f"aigc-text-{served.name}", daemon=True)
        self.engines[served.name] = engine
        self.threads_running.append(thread)
        thread.start()

    def _run(self, engine: Engine) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        engine.run()

    def submit(self, job: Job, served: ServedModel, retry_after: float) -> Future:
        """Hand a text job's completions to its model's engine; QueueFull when `queue_size` completions already
        wait beyond the engine's free slots."""
        engine = self.engines[served.name]
        if engine.queued() >= self.queue_size:
            raise QueueFull(max(1, round(retry_after)))
        completions: list = [None] * len(job.seeds)
        left = [len(job.seeds)]

        def on_text(k: int, text: str) -> None:
            job.first_output = job.first_output or time.perf_counter()
            job.on_text(k, text)

        def on_done(k: int, completion) -> None:
            completions[k] = completion
            left[0] -= 1
            if left[0] == 0:
                self.metrics.tokens.labels(served.name).inc(sum(c.tokens for c in completions))
                if job.first_output is not None:
                    self.metrics.first_token.labels(served.name).observe(job.first_output - job.submitted)
                job.result.set_result(completions)

        def on_error(error: Exception) -> None:
            if not job.result.done():
                job.result.set_exception(error)

        requests = served.family.requests(
            served.model, job.seeds, job.conditions, job.sample, on_text, on_done, on_error, lambda: job.cancelled,
            job.encoded,
        )  # fmt: skip
        engine.submit(requests)
        return job.result

    def close(self) -> None:
        """Finish what the engines hold, then stop their threads."""
        for engine in self.engines.values():
            engine.close()
        for thread in self.threads_running:
            thread.join()


class Service:
    def __init__(
        self,
        checkpoints: dict[str, Path | list[Path]],
        metrics: Metrics,
        queue_size: int = 16,
        max_batch: int = 64,
        device: str = "cpu",
        threads: int = 0,
    ):
        self.checkpoints = checkpoints
        self.metrics = metrics
        self.queue_size = queue_size
        self.max_batch = max_batch
        self.device = device
        self.threads = threads
        self.models: dict[str, ServedModel] = {}
        self.text = TextEngines(metrics, queue_size, max_batch, threads)
        self.load_error: str | None = None
        self.pending: collections.deque[Job] = collections.deque()
        self.changed = threading.Condition()
        self.accepting = True
        self.seconds_per_batch = 1.0  # a running estimate, for Retry-After
        self.thread = threading.Thread(target=self._run, name="aigc-generate", daemon=True)
        metrics.queue_capacity.set(queue_size)

    def start(self) -> None:
        self.thread.start()

    def loaded(self) -> dict[str, ServedModel]:
        """The served models by name; NotReady while they load (or when loading failed)."""
        if len(self.models) < len(self.checkpoints):
            raise NotReady(self.load_error or "the models are still loading; retry shortly")
        return self.models

    def submit(self, job: Job) -> Future:
        """Queue a job whose request was checked against its model (see `check`); QueueFull when there is no room."""
        if job.model in self.text.engines:
            if not self.accepting:
                raise NotReady("the server is shutting down")
            return self.text.submit(job, self.models[job.model], self.seconds_per_batch)
        with self.changed:
            if not self.accepting:
                raise NotReady("the server is shutting down")
            if len(self.pending) >= self.queue_size:
                waits = (len(self.pending) + 1) * self.seconds_per_batch
                raise QueueFull(max(1, round(waits)))
            self.pending.append(job)
            self.metrics.queue_depth.set(len(self.pending))
            self.changed.notify()
        return job.result

    def check(self, job: Job) -> None:
        """UserError when the job asks its model for something it cannot do (a class it lacks, a setting it has no
        use for, a prompt it cannot read)."""
        served = self.loaded()[job.model]
        if job.encoded is None:  # a text job's prompts were checked as they were tokenised
            served.family.check_request(served.model, job.conditions, job.sample)

    def close(self) -> None:
        """Stop taking jobs, finish those queued, and stop the threads."""
        with self.changed:
            self.accepting = False
            self.changed.notify()
        if self.thread.is_alive():
            self.thread.join()
        self.text.close()

    def _run(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            self._load()
        except Exception as error:  # the thread must not die silently: /readyz says why
            self.load_error = f"loading the models failed: {error}"
            raise
        while True:
            with self.changed:
                while not self.pending and self.accepting:
                    self.changed.wait()
                if not self.pending:
                    return
                batch = self._take_batch()
                self.metrics.queue_depth.set(len(self.pending))
            self._draw(batch)

    def _load(self) -> None:
        for name, path in self.checkpoints.items():
            start = time.perf_counter()
            served = self._served(name, path)
            if isinstance(served.family, TextFamily):
                self.text.start(served)
            self.models[name] = served
            self.metrics.load_seconds.labels(name).set(time.perf_counter() - start)
        self.metrics.workers_ready.set(1)

    def _served(self, name: str, path: Path | list[Path]) -> ServedModel:
        """The model served as `name`: a run's, an ensemble's, or an assistant's generator with the assistant."""
        if isinstance(path, list):
            return ServedModel(name, *load_ensemble(path, self.device), Path(path[0]), ensemble=True)
        if is_assistant(path):
            helper, model, config, generator = load_assistant(path, self.device)
            return ServedModel(name, model, config, generator, assistant=helper)
        return ServedModel(name, *load_model(path, self.device), Path(path))

    def _take_batch(self) -> list[Job]:
        """The oldest job and every queued job it can share a generate() call with, up to max_batch outputs."""
        first = self.pending.popleft()
        batch, images = [first], len(first.seeds)
        for job in list(self.pending):
            compatible = job.model == first.model and job.sample == first.sample
            if compatible and images + len(job.seeds) <= self.max_batch:
                self.pending.remove(job)
                batch.append(job)
                images += len(job.seeds)
        return batch

    def _draw(self, batch: list[Job]) -> None:
        """One generate() call for a batch of image (or labelling) jobs; text goes to the engines."""
        served = self.models[batch[0].model]
        seeds = [seed for job in batch for seed in job.seeds]
        conditions = None if batch[0].conditions is None else [c for job in batch for c in job.conditions]
        starts = list(itertools.accumulate([len(job.seeds) for job in batch], initial=0))
        start = time.perf_counter()
        try:
            outputs = served.family.generate(
                served.model, seeds, conditions, batch[0].sample, batch_size=self.max_batch
            )
        except Exception as error:
            for job in batch:
                job.result.set_exception(error)
            return
        self.seconds_per_batch = 0.8 * self.seconds_per_batch + 0.2 * (time.perf_counter() - start)
        self.metrics.batch_images.observe(len(seeds))
        self.metrics.batch_requests.observe(len(batch))
        for job, (first, end) in zip(batch, itertools.pairwise(starts), strict=True):
            job.result.set_result(outputs[first:end])
