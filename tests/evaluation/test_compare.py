"""Comparisons in `aigc eval`: several sources or sample settings in one call, fid and fid_2 side by side, and a
warning when the two feature spaces rank a pair differently."""

import json

import pytest

from aigc.cli import main as aigc
from aigc.evaluation import compare
from aigc.evaluation.compare import rank_disagreements


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def report(label: str, fid: float, fid_2: float) -> dict:
    return {"label": label, "fid": fid, "fid_2": fid_2, "precision": 0.7, "recall": 0.8, "n": 100}


def test_a_pair_ranked_both_ways_is_a_disagreement():
    lines = rank_disagreements([report("ddpm", 0.8, 3.0), report("dpmpp-2m", 2.2, 2.5), report("euler", 2.3, 2.6)])
    assert lines == [
        "fid ranks ddpm ahead of dpmpp-2m (0.800 vs 2.200), fid_2 the other way round (2.500 vs 3.000)",
        "fid ranks ddpm ahead of euler (0.800 vs 2.300), fid_2 the other way round (2.600 vs 3.000)",
    ]
    assert rank_disagreements([report("a", 1.0, 1.0), report("b", 2.0, 3.0)]) == []  # same order
    assert rank_disagreements([report("a", 1.0, 1.0), {"label": "text", "val_loss": 1.0}]) == []  # not scored


def test_the_warning_names_the_pair(monkeypatch, capsys):
    constructed = {"runs/a": (0.8, 3.0), "runs/b": (2.2, 2.5)}
    monkeypatch.setattr(
        compare, "evaluate", lambda source, config, sample_overrides, progress: report("", *constructed[source])
    )
    assert aigc(["eval", "runs/a", "runs/b", "--data", "digits"]) == 0
    out, err = capsys.readouterr()
    assert "warning: the two feature spaces disagree: fid ranks runs/a ahead of runs/b (0.800 vs 2.200)" in err
    assert "runs/a" in out and "fid_2" in out and "precision" in out
    assert aigc(["eval", "runs/b", "runs/b", "--data", "digits"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_samplers_compared_on_one_run(diffusion_run, capsys):
    argv = ["eval", str(diffusion_run), "--n", "20", "--steps", "3", "--metrics", "fid,pr"]
    assert aigc([*argv, "--sampler", "euler", "--sampler", "ddpm", "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    labels = [r["label"] for r in comparison["results"]]
    assert labels == [f"{diffusion_run} sampler=euler steps=3", f"{diffusion_run} sampler=ddpm steps=3"]
    for result in comparison["results"]:
        assert result["sampling"]["steps"] == 3 and result["extractor_2"]["name"] == "aigc-digits-resnet-v1"
        assert {"fid", "fid_2", "precision", "recall", "precision_2", "recall_2"} <= set(result)
    assert comparison["results"][0]["fid"] != comparison["results"][1]["fid"]
    assert isinstance(comparison["disagreements"], list)
