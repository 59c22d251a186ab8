"""Continuous batching: one decode loop per language model keeps a batch of active sequences, each with its own
KV cache. A new request joins at the next step (its prompt prefilled alone) and a finished or cancelled one
leaves at once, so no request waits for the slowest one of a batch formed before it arrived.

A sequence chooses its tokens exactly as `decode` does - its own generator seeded by its seed, its own settings,
the same stops and the same cropping past the context - so its completion depends on its prompt, seed and
settings alone, never on what else is in the batch (tests/sampling/test_batching.py checks it against decode).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from aigc.sampling.text import Completion, Decoding, choose, cut_at_stop, has_stop, token_logprobs


@dataclass
class Request:
    """One completion to draw. The callbacks run on the loop's thread; `cancelled()` is asked every step."""

    prompt: list[int]  # token ids, fewer than the model's context
    seed: int
    decoding: Decoding
    on_done: Callable[[Completion], None]
    on_token: Callable[[int], None] | None = None  # each token as it is chosen, until a stop
    on_error: Callable[[Exception], None] = lambda error: None
    cancelled: Callable[[], bool] = lambda: False


@dataclass
class Sequence:
    """A request being decoded: what it has generated, its cache, and the logits of its next token."""

    request: Request
    generator: torch.Generator
    cache: object
    logits: torch.Tensor  # [vocab_size]
    generated: list[int] = field(default_factory=list)
    logprobs: list = field(default_factory=list)
    length: int = 0  # of the completion, once a stop ends it
    stopped: bool = False


class DecodeLoop:
    """Decodes the requests submitted to it, up to `max_batch` at once, on the thread that calls `run`."""

    def __init__(self, model, detokenize: Callable[[list[int]], str], max_batch: int, on_step=None):
        self.model, self.detokenize, self.max_batch = model, detokenize, max_batch
        self.on_step = on_step or (lambda active, tokens: None)  # (sequences in the step, tokens it drew)
        self.waiting: collections.deque[Request] = collections.deque()
        self.active: list[Sequence] = []
        self.changed = threading.Condition()
        self.open = True
        self.device = next(model.parameters()).device
        self.context = model.context

    def submit(self, requests: list[Request]) -> None:
        with self.changed:
            self.waiting.extend(requests)
            self.changed.notify()

    def waiting_count(self) -> int:
        return len(self.waiting)

    def close(self) -> None:
        """Finish what was submitted, then let `run` return."""
        with self.changed:
            self.open = False
            self.changed.notify()

    def run(self) -> None:
        while True:
            with self.changed:
                while not self.waiting and not self.active and self.open:
                    self.changed.wait()
                if not self.waiting and not self.active:
                    return
                joining = []
                while self.waiting and len(self.active) + len(joining) < self.max_batch:
                    joining.append(self.waiting.popleft())
            with torch.no_grad():
                for request in joining:
                    self.admit(request)
                self.step()

    def admit(self, request: Request) -> None:
        """Prefill the prompt alone, into the sequence's own cache."""
        if request.cancelled():
            return
        try:
            cache = self.model.new_cache()
            prompt = torch.tensor([request.prompt[-self.context :]], dtype=torch.long, device=self.device)
            logits = self.model(prompt, cache)[0, -1]
        except Exception as error:  # one bad request must not stop the loop
            request.on_error(error)
            return
        generator = torch.Generator(self.device).manual_seed(int(request.seed))
        self.active.append(Sequence(request, generator, cache, logits))

    def step(self) -> None:
        """Every active sequence chooses its next token; the finished leave; the rest move one position on."""
        if not self.active:
            return
        staying = []
        for sequence in self.active:
            if sequence.request.cancelled():
                continue
            try:  # one bad request (or a listener that fails) must not stop the loop
                if self.choose(sequence):
                    sequence.request.on_done(self.completion(sequence))
                else:
                    staying.append(sequence)
            except Exception as error:
                sequence.request.on_error(error)
        self.on_step(len(self.active), len(self.active))
        self.active = staying
        if staying:
            self.advance(staying)
        else:
            self.on_step(0, 0)  # idle

    def choose(self, sequence: Sequence) -> bool:
        """The sequence's next token, as `decode` chooses it; whether the sequence is finished."""
        request, decoding = sequence.request, sequence.request.decoding
        history = torch.tensor([sequence.generated], dtype=torch.long, device=self.device)
        logits = sequence.logits[None]
        token = choose(logits, history, decoding, [sequence.generator])
        if decoding.logprobs is not None:
            sequence.logprobs.append(token_logprobs(logits, token, decoding.logprobs, self.detokenize)[0])
        t = int(token[0])
        sequence.generated.append(t)
        step = len(sequence.generated)
        if t in decoding.stop_tokens:
            sequence.stopped = True
        elif decoding.stop:
            sequence.stopped = has_stop(self.detokenize(sequence.generated), decoding.stop)
        sequence.length = step
        if not sequence.stopped and request.on_token is not None:
            request.on_token(t)
        return sequence.stopped or step == decoding.max_tokens

    def advance(self, sequences: list[Sequence]) -> None:
        """The next logits of each sequence: its new token through its cache, all in one forward pass; a
        sequence whose cache holds the whole context recomputes its last `context` tokens alone (as decode)."""
        cached = [s for s in sequences if s.cache.length() < self.context]
        full = [s for s in sequences if s.cache.length() >= self.context]
        if cached:
            tokens = torch.tensor([s.generated[-1] for s in cached], dtype=torch.long, device=self.device)
            logits = self.model.decode_step(tokens, [s.cache for s in cached])
            for sequence, row in zip(cached, logits, strict=True):
                sequence.logits = row
        for sequence in full:
            window = (sequence.request.prompt + sequence.generated)[-self.context :]
            ids = torch.tensor([window], dtype=torch.long, device=self.device)
            sequence.logits = self.model(ids)[0, -1]

    def completion(self, sequence: Sequence) -> Completion:
        decoding = sequence.request.decoding
        ids = [t for t in sequence.generated[: sequence.length] if t not in decoding.stop_tokens]
        text = cut_at_stop(self.detokenize(ids), decoding.stop)
        logprobs = tuple(sequence.logprobs) if decoding.logprobs is not None else None
        return Completion(text, sequence.length, "stop" if sequence.stopped else "length", logprobs)
