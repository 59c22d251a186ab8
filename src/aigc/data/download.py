"""Finding official data files on disk, and fetching them when absent: md5-verified, resumable, atomic.

A file is looked for in each root in order, first under `ROOT/<dataset>/` and then in `ROOT` itself. Roots are
`--data-dir`, then `$AIGC_DATA_DIR`, then `~/.cache/aigc/data`. With `AIGC_OFFLINE=1` nothing is downloaded.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from aigc.core.errors import UserError
from aigc.core.io import file_digest


@dataclass(frozen=True)
class Resource:
    """One official file: its name, md5 and the base URLs of the mirrors that serve it."""

    filename: str
    md5: str
    mirrors: tuple[str, ...]


def data_roots(data_dir: str | Path | None = None) -> list[Path]:
    """The roots searched for data files, most specific first."""
    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get("AIGC_DATA_DIR"):
        roots.append(Path(os.environ["AIGC_DATA_DIR"]))
    roots.append(Path.home() / ".cache" / "aigc" / "data")
    return [root.expanduser() for root in roots]


def find_file(dataset: str, filename: str, roots: list[Path]) -> Path | None:
    for root in roots:
        for candidate in (root / dataset / filename, root / filename):
            if candidate.is_file():
                return candidate
    return None


def locate(dataset: str, resources: tuple[Resource, ...], data_dir: str | Path | None = None) -> list[Path]:
    """Paths of all `resources`, downloading the missing ones into the first root; UserError when offline."""
    roots = data_roots(data_dir)
    paths = [find_file(dataset, r.filename, roots) for r in resources]
    missing = [r for r, path in zip(resources, paths, strict=True) if path is None]
    if not missing:
        return paths
    try:
        if os.environ.get("AIGC_OFFLINE", "") not in ("", "0"):
            raise DownloadFailed("AIGC_OFFLINE is set")
        for resource in missing:
            download(resource, roots[0] / dataset)
    except DownloadFailed as failure:
        names = ", ".join(r.filename for r in missing)
        places = " or ".join(str(root / dataset) for root in roots)
        raise UserError(
            f"{dataset}: {names} not found and could not be downloaded ({failure}); "
            f"put the official files in {places}, or pass --data-dir DIR holding them"
        ) from None
    return [find_file(dataset, r.filename, roots) for r in resources]


class DownloadFailed(Exception):
    """No mirror delivered a file with the right md5; the message lists what each mirror did."""


def download(resource: Resource, directory: Path) -> Path:
    """Fetch one file over its mirrors, resuming a partial `.part` file; verified by md5, then renamed."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / resource.filename
    partial = directory / (resource.filename + ".part")
    failures = []
    for mirror in resource.mirrors:
        url = mirror.rstrip("/") + "/" + resource.filename
        try:
            _fetch(url, partial)
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            failures.append(f"{url}: {getattr(error, 'reason', error)}")
            continue
        if file_digest(partial, "md5") == resource.md5:
            os.replace(partial, final)
            return final
        failures.append(f"{url}: md5 mismatch")
        partial.unlink()  # a bad partial must not be resumed from the next mirror
    raise DownloadFailed("; ".join(failures))


def _fetch(url: str, partial: Path) -> None:
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "aigc"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    with urllib.request.urlopen(request, timeout=30) as response:
        resumed = offset and response.status == 206
        mode = "ab" if resumed else "wb"
        print(f"downloading {url}", file=sys.stderr)
        with open(partial, mode) as f:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                f.write(chunk)
