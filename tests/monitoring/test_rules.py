"""The Prometheus alerting rules shipped for the monitor pass `promtool check rules` and their test cases
(`promtool test rules`: the surge fires after a minute over the margin and not before, a silent stream and a
failing webhook alert). promtool comes with Debian's prometheus package, which .ci/run installs."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).parents[2] / "deploy" / "prometheus"


@pytest.fixture(scope="module")
def promtool():
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("AIGC_REQUIRE_PROMTOOL"):
            pytest.fail("no promtool on PATH; .ci/run installs Debian's prometheus package")
        pytest.skip("no promtool on PATH (apt-get install prometheus)")
    return found


def test_the_rules_are_valid(promtool):
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES / "sentiment-rules.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_cases(promtool):
    result = subprocess.run(
        [promtool, "test", "rules", "sentiment-rules.test.yml"], cwd=RULES, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
