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
        self._wait_ready(workers=int(args[args.index("--workers") + 1]) if "--workers" in args else 1)

    def _wait_ready(self, workers: int, timeout: float = 90.0) -> None:
        """Until every worker has loaded its models. /readyz answers for the one worker a connection reaches, so
        the count comes from /metrics, which adds up all of them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"aigc serve exited with {self.process.returncode}")
            try:
                if f"aigc_workers_ready {workers:.1f}" in self.call("GET", "/metrics").body.decode():
                    return
            except OSError:
                pass
            time.sleep(0.1)
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
