"""POST /v1/recommend: a known user's or a given history's recommendations, as `aigc recommend` makes them; the
server's limits and bad requests as 422s naming what is wrong; the model described in /v1/models and the
recommendations counted in /metrics."""

import time

import pytest
from fastapi.testclient import TestClient

from aigc.core.checkpoint import latest_checkpoint
from aigc.families.registry import FAMILIES, load_model
from aigc.serving.app import create_app
from aigc.serving.settings import load_settings


@pytest.fixture(scope="module")
def served(recommender_run, classifier_run):
    models = {"movies": latest_checkpoint(recommender_run), "reviews": latest_checkpoint(classifier_run)}
    with TestClient(create_app(load_settings(models=models, max_history=3, burst=100))) as client:
        while client.get("/readyz").status_code != 200:
            time.sleep(0.05)
        yield client


def test_a_known_user_gets_what_the_model_recommends(served, recommender_run):
    reply = served.post("/v1/recommend", json={"model": "movies", "user": "2", "k": 4})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "recommendation" and body["user"] == "2" and len(body["items"]) == 4
    model, config = load_model(recommender_run)
    history = model.history("2")
    assert [item["item"] for item in body["history"]] == [model.catalogue[i - 1] for i in history]
    (expected,) = FAMILIES["recommender"].recommend(model, [history], config.sample.__class__(k=4))
    assert [item["item"] for item in body["items"]] == [item["item"] for item in expected]
    assert [item["score"] for item in body["items"]] == pytest.approx([item["score"] for item in expected], abs=1e-5)
    assert all(isinstance(item["cold"], bool) and isinstance(item["because"], list) for item in body["items"])


def test_a_history_of_titles_and_ids(served):
    body = served.post("/v1/recommend", json={"model": "movies", "history": ["Comedy Film 10 (2010)", "111"]}).json()
    assert [item["title"] for item in body["history"]] == ["Comedy Film 10 (2010)", "Comedy Film 11 (2011)"]
    assert len(body["items"]) == 10 and not {"110", "111"} & {item["item"] for item in body["items"]}


@pytest.mark.parametrize(
    "request_body, message",
    [
        ({"model": "movies", "user": "nobody"}, "unknown user 'nobody'"),
        ({"model": "movies", "history": ["Nope (1999)"]}, "no item matches 'Nope (1999)'"),
        ({"model": "movies", "history": ["twin"]}, "names 2 items"),
        ({"model": "movies"}, "give either user"),
        ({"model": "movies", "user": "1", "history": ["100"]}, "give either user"),
        ({"model": "movies", "history": ["100", "101", "102", "103"]}, "this server reads 1 to 3"),
        ({"model": "movies", "user": "1", "k": 0}, "k = 0"),
        ({"model": "movies", "user": "1", "temperature": 1.0}, "temperature"),
        ({"model": "reviews", "user": "1"}, "use /v1/classify"),
    ],
)
def test_bad_requests_are_422_naming_what_is_wrong(served, request_body, message):
    reply = served.post("/v1/recommend", json=request_body)
    assert reply.status_code == 422, reply.text
    assert message in reply.text


def test_models_describe_the_recommender_and_metrics_count_recommendations(served):
    listed = {m["id"]: m for m in served.get("/v1/models").json()["data"]}["movies"]
    assert listed["modality"] == "items" and listed["items"] == 30 and listed["users"] == 24
    assert listed["representation"] == "id+text" and listed["default_sample"] == {"k": 10, "explain": 3}
    assert served.post("/v1/classify", json={"model": "movies", "input": "hi"}).status_code == 422
    served.post("/v1/recommend", json={"model": "movies", "user": "3"})
    metrics = served.get("/metrics").text
    assert 'aigc_recommendations_total{history="user",model="movies"}' in metrics
    assert 'aigc_recommended_cold_items_total{model="movies"}' in metrics
