"""POST /v1/classify: labels and probabilities of texts in the moderation API's shape, each a function of its text
alone, the server's limits as 422s naming the field, the model's own route named when another is asked, and the
labels given counted in /metrics."""

import dataclasses
import shutil
import time

import pytest
import torch
from fastapi.testclient import TestClient

from aigc.core.checkpoint import latest_checkpoint
from aigc.core.errors import UserError
from aigc.families.registry import FAMILIES, load_model
from aigc.runs import train
from aigc.serving.app import create_app
from aigc.serving.settings import load_settings
from conftest import tiny_classifier, write_reviews

GOOD, BAD = "line 3: the cat jumps, good dog 5 times.", "line 4: the owl jumps, bad hen 2 times."


@pytest.fixture(scope="module")
def other_classifier(tmp_path_factory):
    """A second classifier of the reviews, trained apart (another seed, fewer steps)."""
    root = tmp_path_factory.mktemp("other")
    config = tiny_classifier(write_reviews(root / "reviews.csv"))
    train(dataclasses.replace(config, train=dataclasses.replace(config.train, budget=16 * 10, seed=1)), root / "run",
          progress=False)  # fmt: skip
    return root / "run"


@pytest.fixture(scope="module")
def served(classifier_run, other_classifier, lm_run):
    models = {"reviews": latest_checkpoint(classifier_run), "lm": latest_checkpoint(lm_run)}
    models["both"] = [latest_checkpoint(classifier_run), latest_checkpoint(other_classifier)]
    with TestClient(create_app(load_settings(models=models, max_texts=4, max_text_chars=100, burst=100))) as client:
        while client.get("/readyz").status_code != 200:
            time.sleep(0.05)
        yield client


def test_texts_get_the_labels_and_probabilities_the_model_gives(served, classifier_run):
    reply = served.post("/v1/classify", json={"model": "reviews", "input": [GOOD, BAD, GOOD]})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "classification" and body["model"] == "reviews" and body["labels"] == ["bad", "good"]
    assert [r["label"] for r in body["results"]] == ["good", "bad", "good"]
    model, config = load_model(classifier_run)
    expected = FAMILIES["classifier"].classify(model, [GOOD, BAD], config.sample)
    for result, row in zip(body["results"][:2], expected, strict=True):
        assert list(result["probabilities"].values()) == pytest.approx(row.tolist(), abs=1e-5)
    alone = served.post("/v1/classify", json={"model": "reviews", "input": BAD}).json()["results"]
    assert alone[0]["probabilities"] == pytest.approx(body["results"][1]["probabilities"], abs=1e-5)


def test_a_temperature_in_the_request_overrides_the_model_s(served):
    hot = served.post("/v1/classify", json={"model": "reviews", "input": GOOD, "temperature": 1000}).json()
    assert max(hot["results"][0]["probabilities"].values()) < 0.51
    assert served.post("/v1/classify", json={"model": "reviews", "input": GOOD, "temperature": 0}).status_code == 422


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "reviews", "input": ""}, 422, "input"),
        ({"model": "reviews", "input": "x" * 101}, 422, "input"),
        ({"model": "reviews", "input": [GOOD] * 5}, 422, "input: 5 texts; this server labels 1 to 4"),
        ({"model": "reviews", "input": []}, 422, "input: 0 texts"),
        ({"model": "reviews", "input": GOOD, "seed": 1}, 422, "seed"),
        ({"model": "nobody", "input": GOOD}, 404, "The model `nobody` does not exist."),
        ({"model": "lm", "input": GOOD}, 422, "lm generates text, not labels; use /v1/completions"),
        ({"input": GOOD}, 422, "several models are served"),
    ],
)
def test_a_bad_request_is_refused_naming_what_is_wrong(served, body, status, message):
    reply = served.post("/v1/classify", json=body)
    assert reply.status_code == status and message in reply.text, reply.text


def test_other_routes_name_the_classifier_s_own(served):
    reply = served.post("/v1/generate", json={"model": "reviews", "n": 1})
    assert reply.status_code == 422 and "reviews generates labels, not images; use /v1/classify" in reply.text
    models = {m["id"]: m for m in served.get("/v1/models").json()["data"]}
    assert models["reviews"]["labels"] == ["bad", "good"] and models["reviews"]["modality"] == "labels"


def test_the_labels_given_are_counted(served):
    def count(label):
        lines = served.get("/metrics").text.splitlines()
        line = next(
            (x for x in lines if x.startswith(f'aigc_texts_labelled_total{{label="{label}",model="reviews"}}')), None
        )
        return float(line.split()[-1]) if line else 0.0

    before = count("bad"), count("good")
    served.post("/v1/classify", json={"model": "reviews", "input": [BAD, BAD, GOOD]})
    assert (count("bad") - before[0], count("good") - before[1]) == (2.0, 1.0)


def test_an_ensemble_is_served_as_one_model_its_members_probabilities_averaged(
    served, classifier_run, other_classifier
):
    body = served.post("/v1/classify", json={"model": "both", "input": [GOOD, BAD]}).json()
    family, members = FAMILIES["classifier"], [load_model(classifier_run), load_model(other_classifier)]
    each = [family.classify(model, [GOOD, BAD], config.sample) for model, config in members]
    assert not torch.allclose(each[0], each[1])  # two different models
    for result, row in zip(body["results"], (each[0] + each[1]) / 2, strict=True):
        assert list(result["probabilities"].values()) == pytest.approx(row.tolist(), abs=1e-5)
    hot = served.post("/v1/classify", json={"model": "both", "input": GOOD, "temperature": 1000}).json()
    assert max(hot["results"][0]["probabilities"].values()) < 0.51  # the request's temperature, for every member
    listed = {m["id"]: m for m in served.get("/v1/models").json()["data"]}["both"]
    assert listed["labels"] == ["bad", "good"] and not listed["report"]
    assert [m["name"] for m in listed["members"]] == [f"{run.name}/{latest_checkpoint(run).name}" for run in
                                                      (classifier_run, other_classifier)]  # fmt: skip
    assert {"temperature", "context"} <= set(listed["members"][0]) and str(classifier_run) not in str(listed)


def test_serve_names_an_ensemble_and_takes_only_classifiers(classifier_run, other_classifier, lm_run, tmp_path):
    from aigc.cli.serve import served_checkpoints

    both = f"{classifier_run}+{other_classifier}"
    assert served_checkpoints([f"risk={both}"]) == {
        "risk": [latest_checkpoint(classifier_run), latest_checkpoint(other_classifier)]
    }
    with pytest.raises(UserError, match="name the ensemble, as NAME="):
        served_checkpoints([both])
    with pytest.raises(UserError, match="an ensemble is of classifiers; .* is a lm run"):
        served_checkpoints([f"risk={classifier_run}+{lm_run}"])
    with pytest.raises(UserError, match="does not exist"):
        served_checkpoints([f"risk={classifier_run}+{classifier_run}-missing"])
    plus = tmp_path / "a+b"  # a "+" inside a member's own path is part of its name
    shutil.copytree(other_classifier, plus)
    assert served_checkpoints([f"risk={plus}+{classifier_run}"])["risk"] == [
        latest_checkpoint(plus),
        latest_checkpoint(classifier_run),
    ]
    other = tmp_path / "other.csv"
    other.write_text(write_reviews(tmp_path / "reviews.csv").read_text().replace("good", "fine"))
    train(tiny_classifier(other), tmp_path / "fine", progress=False)
    with pytest.raises(UserError, match="share their labels; .*fine has bad, fine, not bad, good"):
        served_checkpoints([f"risk={classifier_run}+{tmp_path / 'fine'}"])


def test_an_ensemble_travels_to_the_workers_in_the_environment(classifier_run, other_classifier, monkeypatch):
    from aigc.serving.settings import ServeSettings

    models = {
        "both": [latest_checkpoint(classifier_run), latest_checkpoint(other_classifier)],
        "one": latest_checkpoint(classifier_run),
    }
    for name, value in load_settings(models=models).to_environment().items():
        monkeypatch.setenv(name, value)
    assert ServeSettings().models == models
    with pytest.raises(UserError, match="models.both"):
        load_settings(models={"both": [latest_checkpoint(classifier_run)]})  # an ensemble of one
