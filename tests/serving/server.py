"""A real `aigc serve` process on a free loopback port, and a small HTTP client for it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args, log_path=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "w+") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        # one torch thread unless `args` says otherwise (the last flag wins)
        command = [sys.executable, "-m", "aigc", "serve", "--threads", "1", *map(str, args), "--port", str(self.port)]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=self.log, env={**os.environ})
        self._wait_ready()

    def _wait_ready(self, timeout: float = 90.0, in_a_row: int = 8) -> None:
        """Until /readyz answers 200 `in_a_row` times running: with several workers each connection reaches one
        of them, and one still loading its models answers 503."""
        deadline, ready = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"aigc serve exited with {self.process.returncode}")
            try:
                ready = ready + 1 if self.call("GET", "/readyz").status == 200 else 0
            except OSError:
                ready = 0
            if ready == in_a_row:
                return
            time.sleep(0.05 if ready else 0.2)
        raise TimeoutError("aigc serve did not become ready")

    def call(self, method: str, path: str, body=None, key: str | None = None, raw: bytes | None = None) -> Reply:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if key is not None:
            request.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, dict(error.headers), error.read())

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        if self.log is not subprocess.DEVNULL:
            self.log.close()
        return code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.stop()
