"""What the text engine runs in a step, in the shape of vLLM's v1 scheduler: every running sequence decodes one
token; waiting prompts are fed in chunks under a token budget; a request is admitted when a KV slot is free.

Sequences live in KV slots so that those decoding are slots 0..r-1 and those being prefilled r..a-1: each step's
decode is one forward pass over a view of consecutive slots. A sequence that finishes its prompt swaps into slot
r; one that leaves is replaced by the last decoding one (and that one by the last prefilling one), each a copy of
one slot's keys and values when it happens, never per step.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field


@dataclass
class Plan:
    """The work of one step."""

    decode: list = field(default_factory=list)  # one token each; their slots are 0..len(decode)-1
    prefill: list[tuple[object, int]] = field(default_factory=list)  # (sequence, tokens of its prompt to feed)
    window: list = field(default_factory=list)  # past the context: the last `context` tokens, recomputed


class Scheduler:
    """Holds the sequences (objects with `prompt`, `fed`, `slot` and `cancelled()`) from waiting to done.
    `chunk`: the most prompt tokens fed in a step while sequences decode (so a long prompt delays them by at
    most one chunk); `budget`: the most tokens in a step when none does (a static batch's prompts)."""

    def __init__(self, memory, count: int, context: int, chunk: int, budget: int):
        self.memory, self.count, self.context = memory, count, context
        self.chunk, self.budget = chunk, budget
        self.waiting: collections.deque = collections.deque()
        self.running: list = []  # running[i] is in slot i
        self.prefilling: list = []  # in slots len(running).., in the order they were admitted
        self.windowed: list = []  # past the context, holding no slot

    def add(self, sequence) -> None:
        self.waiting.append(sequence)

    def active(self) -> int:
        return len(self.running) + len(self.prefilling) + len(self.windowed)

    def free(self) -> int:
        """Slots for more sequences (one past the context holds none, but counts: its work is a whole window)."""
        return self.count - self.active()

    def queued(self) -> int:
        """Requests waiting beyond the slots that are free for them."""
        return max(0, len(self.waiting) - self.free())

    def idle(self) -> bool:
        return not self.waiting and not self.active()

    def plan(self) -> Plan:
        """This step's work; cancelled sequences leave first, and those whose cache is full go to the window."""
        for sequence in [s for s in self.running + self.prefilling + self.windowed if s.cancelled()]:
            self.release(sequence)
        self.waiting = collections.deque(s for s in self.waiting if not s.cancelled())
        for sequence in [s for s in self.running if s.fed >= self.context]:
            self.release(sequence)
            self.windowed.append(sequence)
        plan = Plan(decode=list(self.running), window=list(self.windowed))
        budget = self.chunk if plan.decode or plan.window else self.budget
        for sequence in self.prefilling:
            budget = self.feed(plan, sequence, budget)
        while self.waiting and self.free() and budget > 0:
            sequence = self.waiting.popleft()
            sequence.slot = len(self.running) + len(self.prefilling)
            self.memory.clear(sequence.slot)
            self.prefilling.append(sequence)
            budget = self.feed(plan, sequence, budget)
        return plan

    def feed(self, plan: Plan, sequence, budget: int) -> int:
        n = min(len(sequence.prompt) - sequence.fed, budget)
        if n > 0:
            plan.prefill.append((sequence, n))
        return budget - n

    def promote(self, sequence) -> None:
        """A sequence whose prompt is in its cache decodes from the next step: it takes slot len(running)."""
        first = len(self.running)
        if sequence.slot != first:
            other = next(s for s in self.prefilling if s.slot == first)
            self.memory.swap(sequence.slot, first)
            other.slot, sequence.slot = sequence.slot, first
        self.prefilling.remove(sequence)
        self.running.append(sequence)

    def release(self, sequence) -> None:
        """A sequence leaves (done, cancelled, failed, or past the context): its slot is refilled to keep the
        decoding and prefilling slots consecutive."""
        if sequence in self.windowed:
            self.windowed.remove(sequence)
            return
        slot, sequence.slot = sequence.slot, None
        if sequence in self.running:
            self.running.remove(sequence)
            last = len(self.running)  # the old last decoding slot
            if slot != last:
                self.move(self.running[-1], slot, last)
                self.running.sort(key=lambda s: s.slot)
            slot = last  # now empty, between the decoding and the prefilling slots
        else:
            self.prefilling.remove(sequence)
        end = len(self.running) + len(self.prefilling)  # the old last prefilling slot
        if slot != end:
            self.move(next(s for s in self.prefilling if s.slot == end), slot, end)

    def move(self, sequence, slot: int, source: int) -> None:
        self.memory.move(source, slot)
        sequence.slot = slot
