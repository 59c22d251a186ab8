"""Every shell and Python block of the tutorial (docs/) runs, page by page, in a fresh directory: shell blocks in
bash with this environment's `aigc` on the PATH, Python blocks in one namespace per page. A block preceded by
`<!-- not tested: REASON -->` is skipped, and must say why."""

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"
FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = re.compile(r"^<!-- not tested: (.+?) -->$")
RUN = {"shell": "shell", "bash": "shell", "python": "python"}


@dataclass
class Block:
    page: str
    line: int
    language: str
    code: str
    skip_reason: str | None


def blocks(page: Path) -> list[Block]:
    found, lines, i = [], page.read_text().splitlines(), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        skip = SKIP.match(previous)
        found.append(Block(page.name, i + 1, opening.group(1), "\n".join(lines[i + 1 : end]), skip and skip.group(1)))
        i = end + 1
    return found


PAGES = sorted(DOCS.glob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_every_block_of_the_page_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path / "home"),
        "AIGC_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    namespace: dict = {}
    ran = 0
    for block in blocks(page):
        where = f"{block.page}:{block.line}"
        if block.language not in RUN:
            continue
        if block.skip_reason is not None:  # test_untested_blocks_say_why checks the reason
            continue
        if RUN[block.language] == "shell":
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block.code], env=env, capture_output=True, text=True, timeout=600
            )
            assert result.returncode == 0, f"{where} failed:\n{block.code}\n{result.stdout}\n{result.stderr}"
        else:
            exec(compile(block.code, where, "exec"), namespace)  # noqa: S102 - the tutorial's own code
        ran += 1
    assert ran > 0, f"{page.name} has no tested block"


def test_untested_blocks_say_why():
    for page in PAGES:
        for block in blocks(page):
            if block.skip_reason is not None:
                assert len(block.skip_reason) > 10, f"{block.page}:{block.line}: give a reason"


def test_the_site_builds_without_warnings(tmp_path):
    mkdocs = Path(sys.executable).parent / "mkdocs"
    if not mkdocs.exists():
        pytest.skip("mkdocs is not installed (the docs extra): pip install -e '.[docs]'")
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", tmp_path / "site"],
        cwd=DOCS.parent,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert {p.stem for p in PAGES} - {"index"} <= {p.name for p in (tmp_path / "site").iterdir()}
