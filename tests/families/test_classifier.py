"""The classifier family end to end on a tiny CSV whose label a word decides: trained from random weights and on
an lm run (every weight, and LoRA with the head), calibrated on validation as it trains, labelling texts through
`aigc classify` and scored by `aigc eval`; and its model: pooling, padding and the fitted temperature."""

import dataclasses
import json

import pytest
import torch

from aigc.cli import main as aigc
from aigc.core.checkpoint import latest_checkpoint, read_checkpoint
from aigc.core.errors import UserError
from aigc.families.registry import FAMILIES, load_model
from aigc.models.classifier import SequenceClassifier, fit_temperature
from aigc.models.transformer import TransformerConfig
from aigc.runs import train
from conftest import tiny_classifier, write_reviews


def test_a_run_learns_the_labels_and_is_calibrated_on_validation(classifier_run):
    rows = [json.loads(line) for line in (classifier_run / "metrics.jsonl").read_text().splitlines()]
    evaluations = [row for row in rows if "val_accuracy" in row]
    assert [row["texts"] for row in evaluations] == [400, 800, 960]  # and once more as the budget ends
    assert evaluations[-1]["val_accuracy"] == 1.0 and evaluations[-1]["val_loss"] < evaluations[0]["val_loss"]
    assert all(row["val_loss_calibrated"] <= row["val_loss"] + 1e-6 for row in evaluations)  # T=1 is a candidate
    model, config = load_model(classifier_run)
    assert float(model.temperature) == pytest.approx(evaluations[-1]["temperature"])
    assert config.labels == ("bad", "good") and (classifier_run / "labels.txt").read_text() == "bad\ngood\n"
    samples = (classifier_run / "samples" / "000060.txt").read_text().splitlines()
    assert len(samples) == 8 and samples[0].split(" ")[0] in ("bad", "good") and "; labelled " in samples[0]


def test_classify_prints_labels_and_probabilities(classifier_run, capsys):
    text = "line 3: the cat jumps, good dog 5 times."
    assert aigc(["classify", str(classifier_run), "--text", text, "--text", text.replace("good", "bad"), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["label"] for row in rows] == ["good", "bad"]
    assert all(sum(row["probabilities"].values()) == pytest.approx(1.0) for row in rows)
    assert aigc(["classify", str(classifier_run), "--text", text, "--temperature", "1000"]) == 0
    assert capsys.readouterr().out.startswith("good 0.5")  # a hot softmax is nearly even


def test_eval_scores_every_split_with_a_confusion_matrix(classifier_run, capsys):
    assert aigc(["eval", str(classifier_run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["splits"]) == {"train", "validation", "test"} and report["labels"] == ["bad", "good"]
    test = report["splits"]["test"]
    assert report["accuracy"] == test["accuracy"] == 1.0 and report["macro_f1"] == 1.0
    assert test["confusion"] == [[6, 0], [0, 6]] and 0 <= report["ece"] <= 1 and test["n"] == 12


def test_eval_scores_perturbed_copies_of_the_test_split(classifier_run, capsys):
    assert aigc(["eval", str(classifier_run), "--json", "--split", "test", "--perturb", "typos-10,case,numbers"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["perturbed"]) == {"typos-10", "case", "numbers"}
    clean = report["splits"]["test"]["accuracy"]
    for scores in report["perturbed"].values():
        assert scores["accuracy_drop"] == pytest.approx(clean - scores["accuracy"]) and scores["n"] == 12
    assert aigc(["eval", str(classifier_run), "--perturb", "emoji"]) == 2
    assert "perturb = 'emoji': choose among typos-5" in capsys.readouterr().err


def test_a_classifier_starts_from_an_lm_run_s_transformer(lm_run, tmp_path):
    config = tiny_classifier(write_reviews(tmp_path / "reviews.csv"), init=str(lm_run))
    config = dataclasses.replace(config, model=TransformerConfig(), train=dataclasses.replace(config.train, budget=32))
    run = tmp_path / "run"
    train(config, run, progress=False)
    lm = read_checkpoint(latest_checkpoint(lm_run)).modules["model"]
    _, resolved = load_model(run)
    assert resolved.model.width == 32 and resolved.model.context == 32  # the lm run's
    fine = read_checkpoint(latest_checkpoint(run)).modules["model"]
    assert resolved.tokenizer == json.loads((lm_run / "config.json").read_text())["tokenizer"]
    changed = [name for name in lm if name.startswith("model.") and not torch.equal(lm[name], fine[name])]
    assert changed  # every weight trains (two steps moved them from where they started)


def test_lora_trains_the_adapters_and_the_head_only(lm_run, tmp_path):
    config = tiny_classifier(write_reviews(tmp_path / "reviews.csv"), init=str(lm_run), lora_rank=4)
    config = dataclasses.replace(config, model=TransformerConfig(), train=dataclasses.replace(config.train, budget=32))
    train(config, tmp_path / "run", progress=False)
    lm = read_checkpoint(latest_checkpoint(lm_run)).modules["model"]
    fine = read_checkpoint(latest_checkpoint(tmp_path / "run")).modules["model"]
    frozen = [name for name in lm if name.startswith("model.") and "proj" not in name]
    assert frozen and all(torch.equal(lm[name], fine[name]) for name in frozen)
    assert any("lora_B" in name and fine[name].abs().sum() > 0 for name in fine)
    model, _ = load_model(tmp_path / "run")
    assert FAMILIES["classifier"].classify(model, ["line 1: the fox"], model_sample()).shape == (1, 2)


def model_sample():
    return FAMILIES["classifier"].sample_config()


def test_init_refuses_what_a_classifier_cannot_start_from(classifier_run, tmp_path):
    data = write_reviews(tmp_path / "reviews.csv")
    with pytest.raises(UserError, match="is a classifier run; give a language model"):
        train(tiny_classifier(data, init=str(classifier_run)), tmp_path / "a", progress=False)
    with pytest.raises(UserError, match="no config.json there"):
        train(tiny_classifier(data, init=str(tmp_path)), tmp_path / "b", progress=False)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(UserError, match="hf has no model.safetensors; save the model with save_pretrained"):
        train(tiny_classifier(data, init=str(tmp_path / "hf")), tmp_path / "c", progress=False)


def test_a_classifier_on_an_lm_run_pools_as_asked(lm_run, tmp_path):
    config = tiny_classifier(write_reviews(tmp_path / "reviews.csv"), init=str(lm_run))
    head, budget = dataclasses.replace(config.head, pooling="mean"), dataclasses.replace(config.train, budget=32)
    config = dataclasses.replace(config, model=TransformerConfig(), head=head, train=budget)
    train(config, tmp_path / "run", progress=False)
    model, resolved = load_model(tmp_path / "run")
    assert resolved.head.pooling == "mean" and model.pooling == "mean"


def test_init_takes_the_tokenizer_of_its_run(lm_run, tmp_path):
    config = tiny_classifier(write_reviews(tmp_path / "reviews.csv"), init=str(lm_run))
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, tokenizer="bpe"))
    with pytest.raises(UserError, match="--width, --layers, --heads, --tokenizer: the model comes from"):
        train(config, tmp_path / "run", progress=False)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_padding_changes_no_text_s_logits(pooling):
    torch.manual_seed(0)
    model = SequenceClassifier(TransformerConfig(vocab_size=20, width=32, layers=2, heads=2, context=16), 3, pooling)
    short, long = torch.tensor([[3, 4, 5]]), torch.tensor([[6, 7, 8, 9, 10, 11]])
    padded = torch.cat([torch.cat([short, torch.zeros(1, 3, dtype=torch.long)], 1), long])
    together = model(padded, torch.tensor([3, 6]))
    alone = torch.cat([model(short, torch.tensor([3])), model(long, torch.tensor([6]))])
    assert torch.allclose(together, alone, atol=1e-5)
    hidden = model.model(short)
    expected = hidden[0, -1] if pooling == "last" else hidden[0].mean(0)
    assert torch.allclose(model.pooled(short, torch.tensor([3]))[0], expected, atol=1e-6)


def test_the_fitted_temperature_undoes_overconfidence():
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (4000,))
    calibrated = torch.randn(4000, 3) + 2.0 * torch.nn.functional.one_hot(labels, 3)
    drawn = torch.distributions.Categorical(logits=calibrated).sample()  # labels the calibrated logits predict
    assert fit_temperature(3.0 * calibrated, drawn) == pytest.approx(3.0, rel=0.1)


@pytest.mark.parametrize("lora", [False, True])
def test_a_resumed_run_ends_with_the_weights_of_one_never_stopped(lm_run, tmp_path, lora):
    data = write_reviews(tmp_path / "reviews.csv")
    config = tiny_classifier(data, init=str(lm_run), **({"lora_rank": 4} if lora else {}))
    config = dataclasses.replace(
        config,
        model=TransformerConfig(),  # a constant rate: a cosine's rate depends on the budget, which the resume extends
        train=dataclasses.replace(config.train, budget=16 * 8, eval_every=16 * 4, lr_schedule="constant"),
    )
    train(config, tmp_path / "straight", progress=False)
    train(dataclasses.replace(config, train=dataclasses.replace(config.train, budget=16 * 4)), tmp_path / "resumed",
          progress=False)  # fmt: skip
    train(config, tmp_path / "resumed", resume=True, more={"budget": 16 * 4}, progress=False)
    straight, resumed = (
        read_checkpoint(latest_checkpoint(tmp_path / r)).modules["model"] for r in ("straight", "resumed")
    )
    assert straight.keys() == resumed.keys()
    assert [name for name in straight if not torch.equal(straight[name], resumed[name])] == []  # the temperature too


def test_adversarial_training_pushes_the_embeddings_within_epsilon():
    from aigc.families.classifier.trainer import projected, step_along

    gradient = torch.randn(3, 5, 8)
    step = step_along(gradient, 0.5)
    assert torch.allclose(step.flatten(1).norm(dim=1), torch.full((3,), 0.5))
    big, small = 4 * step, 0.1 * step
    assert torch.allclose(projected(big, 0.5), step, atol=1e-6) and torch.equal(projected(small, 0.5), small)


@pytest.mark.parametrize("kind", ["fgm", "pgd"])
def test_an_adversarial_run_logs_both_losses_and_the_pushed_one_is_higher(tmp_path, kind):
    config = tiny_classifier(write_reviews(tmp_path / "reviews.csv"))
    robustness = dataclasses.replace(config.robustness, adversarial=kind, epsilon=0.5, pgd_steps=2)
    config = dataclasses.replace(config, robustness=robustness, train=dataclasses.replace(config.train, budget=16 * 20))
    train(config, tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [row for row in rows if "adversarial_loss" in row]
    assert logged and all(row["adversarial_loss"] > row["loss"] for row in logged)
    model, _ = load_model(tmp_path / "run")
    assert not model.model.embed_tokens._forward_hooks  # the hook stays with the trainer, not the saved model


def test_classify_reads_a_file_of_texts_and_names_a_bad_one(classifier_run, tmp_path, capsys):
    texts = tmp_path / "texts.jsonl"
    texts.write_text('{"text": "line 3: the cat jumps, good dog 5 times."}\n')
    assert aigc(["classify", str(classifier_run), "--file", str(texts)]) == 0
    assert capsys.readouterr().out.startswith("good ")
    texts.write_text('{"text": 3}\n')
    assert aigc(["classify", str(classifier_run), "--file", str(texts)]) == 2
    assert 'texts.jsonl:1: each line must be an object with a "text" string' in capsys.readouterr().err
    assert aigc(["classify", str(classifier_run), "--file", str(tmp_path / "none.jsonl")]) == 2
    assert "none.jsonl does not exist" in capsys.readouterr().err


def test_an_ensemble_averages_its_members_probabilities(classifier_run, tmp_path, capsys):
    from aigc.families.registry import load_ensemble

    config = tiny_classifier(write_reviews(tmp_path / "reviews.csv"))
    other = dataclasses.replace(config, train=dataclasses.replace(config.train, budget=16 * 10, seed=1))
    train(other, tmp_path / "other", progress=False)
    runs = [str(classifier_run), str(tmp_path / "other")]
    assert aigc(["eval", *runs, "--ensemble", "--json", "--split", "test"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["members"] == runs and set(report["splits"]) == {"test"}
    members = [load_model(run) for run in runs]
    family = FAMILIES["classifier"]
    texts = ["line 3: the cat jumps, good dog 5 times.", "line 4: the owl jumps, bad hen 2 times."]
    both, first = load_ensemble(runs)
    calibrated, raw = family.judged(both, texts, first.sample)
    each = [family.judged(model, texts, config.sample) for model, config in members]
    assert torch.allclose(calibrated, (each[0][0] + each[1][0]) / 2) and torch.allclose(
        raw, (each[0][1] + each[1][1]) / 2
    )
    assert aigc(["eval", runs[0], runs[0], "--ensemble", "--json", "--split", "test"]) == 0
    twice = json.loads(capsys.readouterr().out)
    assert aigc(["eval", runs[0], "--json", "--split", "test"]) == 0
    assert twice["splits"]["test"]["nll"] == pytest.approx(json.loads(capsys.readouterr().out)["splits"]["test"]["nll"])


def test_an_ensemble_refuses_members_that_do_not_agree(classifier_run, lm_run, capsys):
    assert aigc(["eval", str(classifier_run), str(lm_run), "--ensemble"]) == 2
    assert "an ensemble is of classifiers; " in capsys.readouterr().err
