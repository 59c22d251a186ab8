"""Incremental detokenisation: the text of a completion as its tokens arrive, each token decoded with the few
before it rather than the whole completion again (the window of vLLM's and transformers' streamers), and the
stop strings looked for in a bounded tail. So a token costs the same at any length."""

from __future__ import annotations

from collections.abc import Callable, Sequence

PARTIAL = "\ufffd"  # what a byte-level tokenizer decodes half a character to


class Detokenizer:
    """Text of the tokens added so far. A window of tokens from `prefix` is decoded and compared with its part up
    to `read` (the text already given out); the difference is new text, unless it ends in half a character, which
    waits for the token that completes it. `pending` holds the text not yet shown: the new text, and behind it as
    many characters as could begin a stop string (a stream must not show the start of one that then ends the
    completion)."""

    def __init__(self, decode: Callable[[list[int]], str], stop: Sequence[str] = ()):
        self.decode, self.stop = decode, tuple(stop)
        self.hold = max((len(s) - 1 for s in stop), default=0)
        self.ids: list[int] = []
        self.prefix = self.read = 0
        self.pending = ""
        self.shown = 0  # characters given out by `take`

    def add(self, token: int) -> bool:
        """Add a token; whether the text now holds a stop string."""
        self.ids.append(token)
        before = self.decode(self.ids[self.prefix : self.read])
        after = self.decode(self.ids[self.prefix :])
        if len(after) <= len(before):
            return False
        if after.endswith(PARTIAL):  # held until whole, but a stop string may already end before it
            unsure = self.pending + after[len(before) :].rstrip(PARTIAL)
            return any(s in unsure for s in self.stop)
        self.pending += after[len(before) :]
        self.prefix, self.read = self.read, len(self.ids)
        return any(s in self.pending for s in self.stop)  # a stop string ending in the new text lies in pending

    def take(self) -> str:
        """The text that may be shown now and was not before."""
        cut = len(self.pending) - self.hold
        if cut <= 0:
            return ""
        text, self.pending = self.pending[:cut], self.pending[cut:]
        self.shown += len(text)
        return text

    def rest(self, completion: str) -> str:
        """What a stream still owes once the completion is final: its text past what was shown."""
        text = completion[self.shown :]
        self.shown = len(completion)
        return text
