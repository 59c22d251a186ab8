"""Following a growing text file as `tail -F` does: each complete line once, in order, across the file growing,
being truncated in place (read again from its start) and being rotated (the old file read to its end, then the
new one from its start). A line is complete at its newline; the last line of a rotated file is complete without
one, since nothing will write to that file again.

What no follower can see: a file truncated and written past the old length between two polls (copytruncate
with a fast writer) looks like growth; rotate by renaming instead."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


class Follower:
    def __init__(self, path: Path, from_end: bool = False):
        self.path, self.from_end = path, from_end
        self.file: BinaryIO | None = None
        self.inode: int | None = None
        self.offset = 0  # bytes of the open file read so far
        self.partial = b""  # the start of a line whose newline has not come yet

    def poll(self) -> list[str]:
        """The complete lines written since the last poll (none while the file does not exist)."""
        if self.file is None:
            return self.open(at_end=self.from_end)
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        if current is None or current.st_ino != self.inode:  # rotated away (or removed)
            lines = self.read(final=True)
            self.file.close()
            self.file = None
            return lines + (self.open(at_end=False) if current is not None else [])
        if current.st_size < self.offset:  # truncated in place: its lines are new ones
            self.file.seek(0)
            self.offset, self.partial = 0, b""
        return self.read()

    def open(self, at_end: bool) -> list[str]:
        try:
            self.file = open(self.path, "rb")  # noqa: SIM115 (kept open between polls, closed on rotation)
        except FileNotFoundError:
            return []
        self.inode = os.fstat(self.file.fileno()).st_ino
        self.offset, self.partial = (self.file.seek(0, os.SEEK_END) if at_end else 0), b""
        self.from_end = False  # only the first file starts at its end
        return self.read()

    def read(self, final: bool = False) -> list[str]:
        data = self.file.read()
        self.offset += len(data)
        *complete, self.partial = (self.partial + data).split(b"\n")
        if final and self.partial:
            complete.append(self.partial)
            self.partial = b""
        return [line.decode("utf-8", errors="replace").removesuffix("\r") for line in complete if line.strip()]

    def rest(self) -> list[str]:
        """The last line when it has no newline yet, as a complete one (a file read to its end, once)."""
        rest, self.partial = self.partial, b""
        return [rest.decode("utf-8", errors="replace")] if rest.strip() else []

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
