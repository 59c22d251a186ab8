"""Crash-safe file writes, hashing, reading a UTF-8 file of the user's (one line naming the first bad byte), and reading
the versioned JSON manifest of a directory aigc wrote."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from aigc.core.errors import UserError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Create `path` so that readers see either the old file or the complete new one, never a torn one.

    `write` receives a temporary path in the same directory; it is fsynced and renamed over `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; the result should be an ordinary file
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(directory: Path, name: str, version: int, what: str, remedy: str) -> dict:
    """The JSON object in `directory/name`, whose "format" must be `version`; UserError saying `remedy` when the
    directory is not `what` (no readable object there) or was written in another format."""
    import json

    try:
        manifest = json.loads((Path(directory) / name).read_text())
    except (OSError, ValueError):
        raise UserError(f"{directory} is not {what} (no readable {name}); {remedy}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != version:
        raise UserError(f"{directory}/{name} is not of format {version}, which this aigc reads; {remedy}")
    return manifest


def read_text_file(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UserError(
            f"{path}:{line} is not UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start}); convert the file, "
            "e.g. iconv -f latin1 -t utf-8"
        ) from None
