"""The lm family end to end: the CLI path on the embedded default, exact resumption, per-seed completions, the
stream, the schedules and optimisers, the Hugging Face export, the in-loop validation, and every bad input as
one line with exit status 2."""

import dataclasses
import json
import math
import pickle
import shutil

import pytest
import torch
from safetensors import safe_open
from tests.conftest import tiny_lm, write_lm_text

from aigc.cli import main as aigc
from aigc.core.checkpoint import latest_checkpoint
from aigc.families.lm.config import TRAIN, LMSampleConfig
from aigc.families.lm.trainer import make_optimizers
from aigc.families.registry import family, load_model
from aigc.runs import train
from aigc.training.optim import budget_share, learning_rate

LM = family("lm")
TINY = ["--width", "32", "--layers", "1", "--heads", "2", "--context", "32", "--batch", "4", "--no-progress"]


def tensors(path):
    with safe_open(str(path), framework="pt") as f:
        return {key: f.get_tensor(key) for key in f.keys()}


def test_the_cli_trains_samples_evaluates_and_exports_on_the_embedded_default(tmp_path, capsys):
    run = tmp_path / "docs"
    assert aigc(["train", "lm", "--tokens", "4k", "--snapshot-tokens", "2k", *TINY, "--out", str(run)]) == 0
    assert "done: 0.00M tokens" in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    assert config["family"] == "lm" and config["data"]["name"] == "python-docs" and config["model"]["vocab_size"] > 50
    assert json.loads((run / "tokenizer.json").read_text())["model"]["type"] == "WordLevel"
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["000016.txt", "000032.txt"]
    assert "--- seed 3 ---" in (run / "samples" / "000032.txt").read_text()  # train.grid_size texts of the fixed seeds

    assert aigc(["sample", str(run), "--prompt", "def ", "--max-tokens", "20", "--seed", "0"]) == 0
    streamed = capsys.readouterr().out
    assert streamed.startswith("def ") and len(streamed) >= len("def ") + 1
    out = tmp_path / "completions.jsonl"
    assert aigc(["sample", str(run), "--prompt", "def ", "--max-tokens", "20", "--n", "2", "--out", str(out)]) == 0
    assert "wrote 2 completion(s)" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seed"] for r in rows] == [0, 1] and rows[0]["settings"]["max_tokens"] == 20
    assert streamed == "def " + rows[0]["completion"] + "\n"  # the stream is the completion of seed 0

    assert aigc(["eval", str(run), "--json", "--n", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["reference"] == "python-docs/validation" and report["completions"] == 2
    assert math.isclose(report["perplexity"], math.exp(report["val_loss"]))
    assert 0 < report["bits_per_byte"] < 8 and 0 <= report["distinct_2"] <= 1 and report["max_copy_chars"] >= 1

    assert aigc(["export", str(run), "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    assert {p.name for p in (tmp_path / "hf").iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}


def test_a_resumed_run_ends_bit_identical_to_one_never_stopped(tmp_path):
    text = write_lm_text(tmp_path / "text.txt")
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(tiny_lm(text), straight, progress=False)
    final = latest_checkpoint(straight)
    shutil.copytree(straight, stopped)
    for path in (stopped / "checkpoints").glob(f"{final.name.split('.')[0]}*"):
        path.unlink()  # as if stopped right after the half-way snapshot
    assert latest_checkpoint(stopped).name == "000004.safetensors"
    outcome = train(tiny_lm(text), stopped, resume=True, progress=False)
    assert outcome.checkpoint.name == final.name
    ours, theirs = tensors(outcome.checkpoint), tensors(final)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    state = outcome.checkpoint.with_name(final.name.replace(".safetensors", ".state.safetensors"))
    ours, theirs = tensors(state), tensors(final.with_name(state.name))
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)  # Muon's and AdamW's moments too


def test_each_completion_depends_on_its_prompt_and_seed_alone(lm_run):
    model, _ = load_model(lm_run)
    prompts, seeds = ["line 1", "the ", "line 1", "the "], [0, 1, 2, 3]
    sample = LMSampleConfig(max_tokens=16, temperature=1.0, top_k=20)
    together = [c.text for c in LM.generate(model, seeds, prompts, sample, batch_size=8)]
    alone = [LM.generate(model, [s], [p], sample, batch_size=1)[0].text for p, s in zip(prompts, seeds, strict=True)]
    assert together == alone and len(set(together)) == 4


def test_the_stream_adds_up_to_each_completion_even_with_stop_strings(lm_run):
    model, _ = load_model(lm_run)
    sample = LMSampleConfig(max_tokens=24, temperature=1.0, stop=(" the", "\n"))
    pieces = {}
    drawn = LM.generate(
        model, [0, 1, 2], ["line "] * 3, sample, on_text=lambda k, t: pieces.setdefault(k, []).append(t)
    )
    for k, completion in enumerate(drawn):
        assert "".join(pieces.get(k, [])) == completion.text
        assert " the" not in completion.text and "\n" not in completion.text


def lr_scale(train, seen: int, seconds: float) -> float:
    """The learning rate as a share of its peak, `seen` tokens and `seconds` into the run."""
    return learning_rate(train, seen, budget_share(train, seen, seconds)) / train.lr


def test_schedules_warm_up_then_follow_their_shape():
    cosine = dataclasses.replace(TRAIN, budget=1000, warmup=100, lr_schedule="cosine", final_lr=0.1)
    assert lr_scale(cosine, 50, 0) == pytest.approx(0.5 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.05))))
    assert lr_scale(cosine, 1000, 0) == pytest.approx(0.1)
    wsd = dataclasses.replace(TRAIN, budget=1000, warmup=100, lr_schedule="wsd", decay=0.2, final_lr=0.0)
    assert lr_scale(wsd, 500, 0) == 1.0 and lr_scale(wsd, 900, 0) == pytest.approx(0.5)
    assert lr_scale(wsd, 1000, 0) == pytest.approx(0)
    timed = dataclasses.replace(TRAIN, minutes=10, warmup=0, lr_schedule="wsd", decay=0.5, final_lr=0.0)
    assert lr_scale(timed, 10**9, 450) == pytest.approx(0.5)  # a minutes budget decays on time


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest(lm_run):
    model, config = load_model(lm_run)
    optimizers = make_optimizers(model.train().requires_grad_(True), TRAIN)
    muon = {id(p) for g in optimizers["muon"].param_groups for p in g["params"]}
    adamw = {id(p) for g in optimizers["adamw"].param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in muon) == (p.ndim == 2 and name.startswith("model.layers.")), name
        assert (id(p) in adamw) != (id(p) in muon), name
    assert set(make_optimizers(model, dataclasses.replace(TRAIN, optimizer="adamw"))) == {"adamw"}


@pytest.mark.parametrize("qk_norm", [False, True])
def test_the_export_is_a_hugging_face_model_that_agrees_to_1e_4(tmp_path, qk_norm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    text = write_lm_text(tmp_path / "text.txt")
    config = tiny_lm(text)
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, qk_norm=qk_norm, tied_embeddings=qk_norm)
    )
    train(config, tmp_path / "run", progress=False)
    out = tmp_path / "hf"
    assert aigc(["export", str(tmp_path / "run"), "--out", str(out)]) == 0
    reference = AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(reference).__name__ == ("Qwen3ForCausalLM" if qk_norm else "LlamaForCausalLM")
    tokenizer = AutoTokenizer.from_pretrained(out)
    ours, _ = load_model(tmp_path / "run")
    ids = tokenizer("line 12: the owl jumps", return_tensors="pt").input_ids
    assert ids[0].tolist() == ours.tokenizer.encode("line 12: the owl jumps")
    assert tokenizer.decode(ids[0]) == "line 12: the owl jumps"
    with torch.no_grad():
        assert torch.allclose(reference(ids).logits, ours(ids), atol=1e-4)


def test_in_loop_validation_keeps_the_best_checkpoint(tmp_path):
    text = write_lm_text(tmp_path / "text.txt")
    run = tmp_path / "run"
    train(tiny_lm(text, eval_every=8 * 32 * 2, eval_n=500), run, progress=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [row["val_loss"] for row in rows if "val_loss" in row]
    assert len(losses) == 4 and all(row["tokens"] % 512 == 0 for row in rows if "val_loss" in row)
    with safe_open(str(run / "checkpoints" / "best.safetensors"), framework="pt") as f:
        assert float(f.metadata()["val_loss"]) == min(losses)


def test_the_report_shows_the_sample_texts_and_the_loss_curve(lm_run, tmp_path):
    from aigc.report import write_report

    page = write_report(lm_run, tmp_path / "report.html").read_text()
    assert page.count("<pre class=snap") == 2 and "--- seed 1 ---" in page
    assert "alt='Losses'" in page and "tokens seen" in page


def bad_inputs(tmp_path, lm_run):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(bytes(range(256)))
    disguised = tmp_path / "model.safetensors"
    disguised.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    run, new = str(lm_run), ["train", "lm", *TINY, "--tokens", "1k", "--out", str(tmp_path / "new")]
    return [
        ([*new, "--data", "wikipedia"], "unknown text data set 'wikipedia'"),
        ([*new, "--data", f"text:{empty}"], "holds no text"),
        ([*new, "--data", f"text:{binary}"], "is not UTF-8 text (byte 128)"),
        ([*new, "--tokens", "5Q"], "'5Q' is not a count"),
        ([*new, "--context", "1"], "context = 1: must be at least 2"),
        (["sample", run, "--prompt", "x" * 40], "the prompt is 40 tokens; this model reads at most 31"),
        (
            ["sample", run, "--prompt", "Zürich"],
            "character 'Z' (U+005A), 'ü' (U+00FC) is not in this model's vocabulary",
        ),
        (["sample", run, "--max-tokens", "0"], "max_tokens = 0: must lie in 1..4096"),
        (["sample", run, "--max-tokens", "5000"], "max_tokens = 5000: must lie in 1..4096"),
        (["sample", run, "--steps", "4"], "steps: not a setting of lm models"),
        (["sample", run, "--out", str(tmp_path / "x.png")], "name a .txt or .jsonl file"),
        (["sample", str(disguised)], "is not a readable safetensors checkpoint"),
        (["eval", run, "--metrics", "fid"], "--metrics fid: not a metric of a language model"),
        (["export", run, "--format", "gguf", "--out", str(tmp_path / "out")], "lm models export as hf"),
        (["export", run, "--out", str(empty)], "already exists and is not an empty directory"),
        (["train", "lm", "--resume", run, "--width", "64"], "--width cannot change on --resume"),
    ]


def test_every_bad_input_is_one_line_and_exit_2(tmp_path, lm_run, capsys):
    for argv, message in bad_inputs(tmp_path, lm_run):
        assert aigc(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and message in err, (argv, err)
    assert not (tmp_path / "out").exists() and not (tmp_path / "new" / "checkpoints").exists()
