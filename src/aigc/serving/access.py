"""Access control: API keys checked against stored SHA-256 hashes, and a token bucket per caller.

The server never holds a key, only its hash: a key file (or `AIGC_SERVE_API_KEY_HASHES`) that leaks does not let
anyone in. Keys are long random strings, so an unsalted hash is enough (no password stretching needed).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from pathlib import Path

from aigc.core.errors import UserError

HASH = re.compile(r"^[0-9a-f]{64}$")
MAX_TRACKED = 10_000  # callers' buckets kept before full ones are forgotten


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh API key: 256 random bits, URL-safe."""
    return "aigc_" + secrets.token_urlsafe(32)


def read_key_file(path: Path) -> dict[str, str]:
    """{hash: name} from lines `<sha256 hex> [name]`; blank lines and `#` comments are skipped."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        raise UserError(f"--api-keys {path}: cannot read it ({error.strerror}); make one with aigc keys add") from None
    hashes = {}
    for number, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if not HASH.match(fields[0]):
            raise UserError(f"{path}:{number}: expected a 64-digit sha256 hex hash first; add keys with aigc keys add")
        hashes[fields[0]] = fields[1] if len(fields) > 1 else fields[0][:8]
    return hashes


class KeyRing:
    """Who a bearer key belongs to. Empty: access is open."""

    def __init__(self, hashes: dict[str, str]):
        self.hashes = hashes

    @property
    def open(self) -> bool:
        return not self.hashes

    def caller(self, key: str) -> str | None:
        """The name of the key's owner, or None. Compares against every hash in constant time, so neither a
        match's position nor a near miss shows in the response time."""
        digest = hash_key(key)
        found = None
        for stored, name in self.hashes.items():
            if hmac.compare_digest(stored, digest):
                found = name
        return found


class RateLimiter:
    """A token bucket per caller: `burst` requests at once, refilled at `per_minute` requests a minute."""

    def __init__(self, per_minute: float, burst: int, clock=time.monotonic):
        self.rate = per_minute / 60.0
        self.burst = burst
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, time of last update)
        self.lock = threading.Lock()

    def take(self, caller: str) -> float:
        """Spend one token of the caller's; returns 0, or the seconds to wait when the bucket is empty."""
        with self.lock:
            now = self.clock()
            tokens, then = self.buckets.get(caller, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens < 1:
                self.buckets[caller] = (tokens, now)
                return (1 - tokens) / self.rate
            self.buckets[caller] = (tokens - 1, now)
            if len(self.buckets) > MAX_TRACKED:
                self._forget_full(now)
            return 0.0

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: a new caller starts full anyway, so only memory changes (open
        servers key buckets by client address, of which there may be any number)."""
        self.buckets = {
            caller: (tokens, then)
            for caller, (tokens, then) in self.buckets.items()
            if tokens + (now - then) * self.rate < self.burst
        }
