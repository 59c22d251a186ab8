"""The text engine: one loop that decodes language-model requests for `aigc sample`, evaluation, snapshots and
the service alike. Each step the scheduler (sampling/scheduler.py) says what runs - a token for every running
sequence, chunks of waiting prompts; the model step runs it over KV slots allocated once; each sequence with new
logits chooses its token (sampling/text.py) and its text grows incrementally (sampling/detokenizer.py).

A request joins at the next step and leaves when done, and its completion depends on its prompt, seed and
settings alone: its own generator, its own stops, and the crop of nanoGPT's sampler once it outgrows the context
(the last `context` tokens recomputed each step, since a cache would hold positions the model never saw
together). A static batch is the engine with every request submitted at once (`complete`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from aigc.sampling.detokenizer import Detokenizer
from aigc.sampling.scheduler import Plan, Scheduler
from aigc.sampling.text import Completion, Decoding, choose, cut_at_stop, token_logprobs

CHUNK = 64  # prompt tokens fed per step while others decode: the most a new prompt delays them
BUDGET = 512  # tokens per step when nothing decodes (a static batch's prompts)


@dataclass
class Request:
    """One completion to draw. The callbacks run on the engine's thread; `cancelled()` is asked every step."""

    prompt: list[int]  # token ids
    seed: int
    decoding: Decoding
    on_done: Callable[[Completion], None]
    on_text: Callable[[str], None] | None = None  # the text it gains; all of it adds up to the completion's
    on_error: Callable[[Exception], None] = lambda error: None
    cancelled: Callable[[], bool] = lambda: False


@dataclass(eq=False)
class Sequence:
    """A request being decoded: the prompt, the tokens chosen, how many of them its cache holds, its slot."""

    request: Request
    prompt: list[int]
    generator: torch.Generator
    text: Detokenizer
    generated: list[int] = field(default_factory=list)
    fed: int = 0  # tokens of prompt + generated in its cache
    slot: int | None = None
    logprobs: list = field(default_factory=list)
    stopped: bool = False

    def cancelled(self) -> bool:
        return self.request.cancelled()

    def ids(self) -> list[int]:
        return self.prompt + self.generated


class Engine:
    """Decodes the requests submitted to it, up to `slots` at once, on the thread that calls `run` or `complete`."""

    def __init__(self, model, detokenize: Callable[[list[int]], str], slots: int, on_step=None, chunk: int = CHUNK):
        self.detokenize = detokenize
        self.context = model.context
        self.device = next(model.parameters()).device
        memory = model.kv_slots(slots)
        self.scheduler = Scheduler(memory, slots, self.context, chunk, max(BUDGET, chunk))
        self.model_step = ModelStep(model, memory, self.device)
        self.on_step = on_step or (lambda active, tokens: None)  # (sequences in the step, tokens it drew)
        self.changed = threading.Condition()
        self.open = True

    def submit(self, requests: list[Request]) -> None:
        """Queue `requests`; ValueError for one that cannot be decoded (no prompt, no token to generate)."""
        for request in requests:
            if not request.prompt or request.decoding.max_tokens < 1:
                raise ValueError("a request needs a prompt of at least one token and max_tokens of at least 1")
        with self.changed:
            for request in requests:
                generator = torch.Generator(self.device).manual_seed(int(request.seed))
                text = Detokenizer(self.detokenize, request.decoding.stop)
                self.scheduler.add(Sequence(request, request.prompt[-self.context :], generator, text))
            self.changed.notify()

    def queued(self) -> int:
        """Requests waiting beyond the slots free for them (what a service's queue limit counts)."""
        return self.scheduler.queued()

    def close(self) -> None:
        """Finish what was submitted, then let `run` return."""
        with self.changed:
            self.open = False
            self.changed.notify()

    def run(self) -> None:
        """Step until closed and idle (the service's engine thread)."""
        while True:
            with self.changed:
                while self.scheduler.idle() and self.open:
                    self.changed.wait()
                if self.scheduler.idle():
                    return
                try:
                    plan = self.scheduler.plan()
                except Exception as error:  # a listener's failure (cancelled()) must not stop the engine
                    self.fail_all(error)
                    continue
            try:
                self.step(plan)
            except Exception as error:  # what no request's handler caught: every request hears it, the engine goes on
                with self.changed:
                    self.fail_all(error)

    def complete(self, requests: list[Request]) -> None:
        """Decode `requests` to the end on this thread (a static batch)."""
        self.submit(requests)
        while not self.scheduler.idle():
            self.step(self.scheduler.plan())

    @torch.no_grad()
    def step(self, plan: Plan) -> None:
        """Run the plan's forward passes; every sequence with new logits chooses its next token."""
        drawn, failures = self.model_step(plan)
        for sequences, error in failures:
            self.fail(sequences, error)
        for group in same_choice(drawn):
            try:
                tokens = self.choose(group)
            except Exception as error:
                self.fail([sequence for sequence, _ in group], error)
                continue
            for (sequence, _), token in zip(group, tokens, strict=True):
                try:  # one bad request (or a listener that fails) must not stop the others
                    self.accept(sequence, token)
                except Exception as error:
                    self.fail([sequence], error)
        self.on_step(self.scheduler.active(), len(drawn))

    def choose(self, group: list[tuple[Sequence, torch.Tensor]]) -> list[int]:
        """The next token of each sequence of a group that chooses alike, in one call (row i drawn from its own
        generator), with its log-probabilities when asked for."""
        sequences = [sequence for sequence, _ in group]
        decoding = sequences[0].request.decoding
        logits = torch.stack([row for _, row in group])
        penalised = decoding.repetition_penalty != 1.0  # only then are the histories read (and of one length)
        history = torch.tensor([s.generated if penalised else [] for s in sequences], dtype=torch.long)
        tokens = choose(logits, history.to(self.device), decoding, [s.generator for s in sequences])
        if decoding.logprobs is not None:
            entries = token_logprobs(logits, tokens, decoding.logprobs, self.detokenize)
            for sequence, entry in zip(sequences, entries, strict=True):
                sequence.logprobs.append(entry)
        return tokens.tolist()

    def accept(self, sequence: Sequence, token: int) -> None:
        """The sequence's new token, its text, and whether it is done (then it leaves and hears its end)."""
        decoding = sequence.request.decoding
        sequence.generated.append(token)
        if token in decoding.stop_tokens:
            sequence.stopped = True
        else:
            sequence.stopped = sequence.text.add(token)
        on_text = sequence.request.on_text
        if not sequence.stopped:
            shown = sequence.text.take()  # also when nobody listens, so the text held stays a bounded tail
            if shown and on_text is not None:
                on_text(shown)
        if sequence.stopped or len(sequence.generated) >= decoding.max_tokens:
            self.finish(sequence)
        elif sequence in self.scheduler.prefilling:
            self.scheduler.promote(sequence)

    def finish(self, sequence: Sequence) -> None:
        self.scheduler.release(sequence)
        decoding = sequence.request.decoding
        ids = [t for t in sequence.generated if t not in decoding.stop_tokens]
        text = cut_at_stop(self.detokenize(ids), decoding.stop)
        logprobs = tuple(sequence.logprobs) if decoding.logprobs is not None else None
        reason = "stop" if sequence.stopped else "length"
        completion = Completion(text, len(sequence.generated), reason, logprobs)
        if sequence.request.on_text is not None:
            rest = sequence.text.rest(text)
            if rest:
                sequence.request.on_text(rest)
        sequence.request.on_done(completion)

    def fail(self, sequences: list[Sequence], error: Exception) -> None:
        for sequence in sequences:
            if sequence.slot is not None or sequence in self.scheduler.windowed:
                self.scheduler.release(sequence)
            try:
                sequence.request.on_error(error)
            except Exception:  # a listener that fails as it hears of a failure: nothing more to tell it
                pass

    def fail_all(self, error: Exception) -> None:
        """Every request the engine holds hears `error` and leaves (the memory starts again empty)."""
        scheduler = self.scheduler
        held = scheduler.running + scheduler.prefilling + scheduler.windowed + list(scheduler.waiting)
        scheduler.waiting.clear()
        self.fail(held, error)


class ModelStep:
    """The model's part of a step: the forward passes a plan asks for, over the KV slots, and the next-token
    logits of each sequence that has them (a prompt fed to its end, a decoded token, a recomputed window)."""

    def __init__(self, model, memory, device: torch.device):
        self.model, self.memory, self.device = model, memory, device
        self.context = model.context

    def __call__(self, plan: Plan) -> tuple[list, list]:
        """([(sequence, logits [vocab_size])], [(sequences, error)] of what failed)."""
        failures: list[tuple[list[Sequence], Exception]] = []
        drawn = self.forward_decode(plan.decode, failures) + self.forward_prefill(plan.prefill, failures)
        return drawn + self.forward_window(plan.window, failures), failures

    def forward_decode(self, sequences: list[Sequence], failures: list) -> list:
        """One token for each decoding sequence, slots 0..n-1, in one pass."""
        if not sequences:
            return []
        tokens = torch.tensor([[s.generated[-1]] for s in sequences], device=self.device)
        return self.forward(sequences, 0, tokens, [1] * len(sequences), failures)

    def forward_prefill(self, chunks: list[tuple[Sequence, int]], failures: list) -> list:
        """The prompt chunks, a pass for each run of consecutive slots; logits of prompts fed to their end."""
        drawn = []
        for run in consecutive(sorted(chunks, key=lambda chunk: chunk[0].slot)):
            counts = [n for _, n in run]
            rows = [s.prompt[s.fed : s.fed + n] + [0] * (max(counts) - n) for s, n in run]  # padded
            sequences = [s for s, _ in run]
            drawn += [
                (s, row)
                for s, row in self.forward(
                    sequences, run[0][0].slot, torch.tensor(rows, device=self.device), counts, failures
                )
                if s.fed == len(s.prompt)
            ]
        return drawn

    def forward_window(self, sequences: list[Sequence], failures: list) -> list:
        """Sequences past the context: their last `context` tokens, recomputed without a cache."""
        if not sequences:
            return []
        windows = torch.tensor([s.ids()[-self.context :] for s in sequences], device=self.device)
        try:
            logits = self.model(windows)[:, -1]
        except Exception as error:
            failures.append((sequences, error))
            return []
        return list(zip(sequences, logits, strict=True))

    def forward(self, sequences: list[Sequence], first: int, tokens: torch.Tensor, counts: list[int], failures) -> list:
        """The pass over consecutive slots from `first`; when it fails, each row alone, so that one bad request
        fails alone."""
        try:
            logits = self.model.extend(self.memory, first, tokens, counts)
        except Exception as error:
            if len(sequences) == 1:
                failures.append((sequences, error))
                return []
            alone = [(i, [sequence], tokens[i : i + 1, : counts[i]]) for i, sequence in enumerate(sequences)]
            return [
                drawn
                for i, one, row in alone
                for drawn in self.forward(one, first + i, row, counts[i : i + 1], failures)
            ]
        for sequence, n in zip(sequences, counts, strict=True):
            sequence.fed += n
        return list(zip(sequences, logits, strict=True))


def consecutive(chunks: list[tuple[Sequence, int]]) -> list[list[tuple[Sequence, int]]]:
    """`chunks` (sorted by slot) split into runs of consecutive slots."""
    runs: list[list] = []
    for chunk in chunks:
        if runs and runs[-1][-1][0].slot + 1 == chunk[0].slot:
            runs[-1].append(chunk)
        else:
            runs.append([chunk])
    return runs


def same_choice(drawn: list[tuple[Sequence, torch.Tensor]]) -> list[list[tuple[Sequence, torch.Tensor]]]:
    """`drawn` in groups that choose their tokens in one call: the same settings, and, with a repetition penalty,
    the same number of tokens generated (their histories stack)."""
    groups: dict = {}
    for sequence, logits in drawn:
        decoding = sequence.request.decoding
        history = len(sequence.generated) if decoding.repetition_penalty != 1.0 else 0
        groups.setdefault((decoding, history), []).append((sequence, logits))
    return list(groups.values())
