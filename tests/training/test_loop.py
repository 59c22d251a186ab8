import dataclasses
from pathlib import Path

import pytest
import torch
from tests.training.test_checkpoint import TINY

from aigc.core.checkpoint import latest_checkpoint
from aigc.core.device import autocast
from aigc.families.diffusion.config import DiffusionRunConfig
from aigc.families.registry import load_checkpoint, load_json
from aigc.runs import train
from aigc.training.batch import DataOrder
from aigc.training.ema import ema_beta
from aigc.training.optim import budget_share, learning_rate


def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path):
    straight = tmp_path / "straight"
    train(TINY, straight, progress=False)
    split = tmp_path / "split"
    half = dataclasses.replace(TINY, train=dataclasses.replace(TINY.train, budget=32))
    train(half, split, progress=False)
    train(TINY, split, resume=True, progress=False)
    a = load_checkpoint(latest_checkpoint(straight))
    b = load_checkpoint(latest_checkpoint(split))
    assert a.step == b.step == 4
    assert a.modules.keys() == b.modules.keys() == {"model", "ema"}
    for name, weights in a.modules.items():
        for key in weights:
            assert torch.equal(weights[key], b.modules[name][key]), (name, key)


def test_data_order_is_a_function_of_position():
    order = DataOrder(10, seed=3)
    stream = order.indices(0, 35)
    assert sorted(stream[:10].tolist()) == list(range(10))  # each epoch is a permutation
    assert torch.equal(DataOrder(10, seed=3).indices(17, 9), stream[17:26])  # same items from any start
    assert not torch.equal(DataOrder(10, seed=4).indices(0, 10), stream[:10])


def test_ema_half_life_in_images():
    beta = ema_beta(batch_size=100, seen=10**9, halflife=1000.0, rampup_ratio=None)
    assert beta**10 == pytest.approx(0.5)  # 10 steps of 100 images = one half-life
    assert ema_beta(100, 1000, 1000.0, rampup_ratio=0.05) < beta  # early on the average forgets faster


def test_learning_rate_warms_up_then_stays():
    config = TINY.train
    assert learning_rate(config, 0, 0.0) == 0
    assert learning_rate(config, 5, 0.0) == pytest.approx(config.lr / 2)
    assert learning_rate(config, 10**6, 1.0) == config.lr


def test_a_known_budget_decays_the_learning_rate_at_its_end():
    config = dataclasses.replace(TINY.train, budget=1000.0, warmup=0.0, lr_schedule="wsd", decay=0.2)
    assert budget_share(config, 900, 0.0) == pytest.approx(0.9)
    assert learning_rate(config, 700, budget_share(config, 700, 0.0)) == config.lr  # before the decay
    assert learning_rate(config, 900, budget_share(config, 900, 0.0)) == pytest.approx(config.lr / 2)
    assert learning_rate(config, 1000, 1.0) == pytest.approx(0)
    timed = dataclasses.replace(config, budget=None, minutes=10.0)
    assert budget_share(timed, 10**9, 540.0) == pytest.approx(0.9)  # minutes: the share of the time spent


@pytest.mark.parametrize(
    ("precision", "capabilities", "bf16"),
    [
        ("auto", {"avx512_bf16": True}, True),
        ("auto", {"amx_bf16": True}, True),
        ("auto", {"avx2": True, "avx512_bf16": False}, False),
        ("fp32", {"avx512_bf16": True}, False),
        ("bf16", {}, True),
    ],
)
def test_auto_precision_uses_bf16_only_where_the_cpu_has_it(monkeypatch, precision, capabilities, bf16):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    with autocast(precision, torch.device("cpu")):
        product = torch.ones(2, 2) @ torch.ones(2, 2)
    assert (product.dtype == torch.bfloat16) == bf16


def test_in_loop_evaluation_logs_fid_and_keeps_the_best(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = dataclasses.replace(TINY, train=dataclasses.replace(TINY.train, eval_every=32, eval_n=50))
    train(config, tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evaluations = [row for row in rows if "fid" in row]
    assert len(evaluations) == 2 and all(row["fid"] > 0 and 1 <= row["classes_present"] <= 10 for row in evaluations)
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.safetensors")
    assert best.step == min(evaluations, key=lambda row: row["fid"])["step"]
    assert latest_checkpoint(tmp_path / "run").name == "000004.safetensors"  # best is never taken for the latest


def test_diffusion_runs_decay_their_rate_and_older_runs_keep_a_constant_one():
    assert DiffusionRunConfig().train.lr_schedule == "wsd"
    release = load_json(Path(__file__).parents[1] / "golden" / "release-0.1.0" / "diffusion" / "config.json")
    assert release.train.lr_schedule == "constant" and release.sample.guidance == 1.0  # as they were trained
