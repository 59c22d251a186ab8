"""The recommender family: item vectors from ids, text or both; scores that read only a history's items (causal,
right padding changes nothing); cold items ranked by their text alone; leave-one-out reasons; training that
learns the tiny catalogue's order, resumes exactly and keeps held-out items out of every softmax; `aigc eval`'s
protocols beside popularity; `aigc recommend` and its one-line errors."""

import dataclasses
import json
import shutil

import pytest
import torch

from aigc.cli import main
from aigc.core.checkpoint import latest_checkpoint, read_checkpoint
from aigc.core.errors import ConfigError, UserError
from aigc.data.ratings import read_ratings
from aigc.evaluation.evaluate import EvalConfig, evaluate
from aigc.families.recommender.config import ItemsConfig
from aigc.families.registry import FAMILIES, load_model
from aigc.models.recommender import SequentialRecommender
from aigc.models.transformer import TransformerConfig
from aigc.runs import train
from conftest import tiny_recommender, write_movielens

FAMILY = FAMILIES["recommender"]


def tiny_model(representation, items=12, features=6):
    config = TransformerConfig(width=16, layers=1, heads=2, context=6, vocab_size=items + 1)
    model = SequentialRecommender(config, features, representation).eval()
    model.features.normal_(generator=torch.Generator().manual_seed(1))
    model.known[1:9] = True  # items 9..12 are cold
    return model


def test_scores_read_only_the_history_and_padding_changes_nothing():
    model = tiny_model("id+text")
    alone = model(torch.tensor([[3, 5]]), torch.tensor([2]))
    padded = model(torch.tensor([[3, 5, 0, 0], [1, 2, 3, 4]]), torch.tensor([2, 4]))
    torch.testing.assert_close(padded[0], alone[0])
    longer = model(torch.tensor([[3, 5, 7]]), torch.tensor([3]))
    assert not torch.allclose(longer, alone)  # the last item read changes the scores
    assert padded[:, 0].eq(float("-inf")).all()  # the padding is never recommended


@pytest.mark.parametrize("representation, cold_scored", [("id", False), ("text", True), ("id+text", True)])
def test_cold_items_are_scored_by_their_text_alone(representation, cold_scored):
    model = tiny_model(representation)
    scores = model(torch.tensor([[1, 2]]), torch.tensor([2]))[0]
    assert scores[9:].isfinite().all() == cold_scored
    assert scores[1:9].isfinite().all()
    if representation == "id+text":  # a cold item's vector is its text's: its id row is never read
        before = model.vectors()[9:].clone()
        model.model.embed_tokens.weight.data[9:] += 1.0
        torch.testing.assert_close(model.vectors()[9:], before)


def test_influence_is_each_history_item_s_leave_one_out_drop():
    model = tiny_model("id+text")
    history, items = torch.tensor([4, 2, 7]), torch.tensor([1, 9])
    weights = model.influence(history, items)
    full = model(history[None], torch.tensor([3]))[0, items]
    without_middle = model(torch.tensor([[4, 7]]), torch.tensor([2]))[0, items]
    assert weights.shape == (2, 3)
    torch.testing.assert_close(weights[:, 1], full - without_middle)
    alone = model.influence(torch.tensor([4]), items)  # nothing is left without it: its weight is the score
    torch.testing.assert_close(alone[:, 0], model(torch.tensor([[4]]), torch.tensor([1]))[0, items])


def test_a_representation_and_its_text_model_go_together():
    with pytest.raises(ConfigError, match="give --text-model RUN"):
        ItemsConfig(representation="text")
    with pytest.raises(ConfigError, match="drop --text-model"):
        ItemsConfig(representation="id", text_model="runs/lm")


def test_data_with_nothing_to_learn_is_refused_in_one_line(tmp_path):
    config = tiny_recommender(write_movielens(tmp_path / "ml"))
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, min_rating=5.5))
    with pytest.raises(UserError, match="no rating reaches --min-rating 5.5"):
        train(config, tmp_path / "run", progress=False)
    lines = (tmp_path / "ml" / "ratings.csv").read_text().splitlines()
    (tmp_path / "ml" / "ratings.csv").write_text("\n".join(lines[:3]) + "\n")  # one user, two likes
    with pytest.raises(UserError, match="no user has 3 likes"):
        train(tiny_recommender(tmp_path / "ml"), tmp_path / "run", progress=False)


@pytest.fixture(scope="module")
def id_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ids")
    config = tiny_recommender(write_movielens(root / "ml"))
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, cold_items=0.0))
    train(config, root / "run", progress=False)
    return root / "run"


def test_training_learns_the_order_of_the_likes(id_run):
    model, config = load_model(id_run)
    ratings = read_ratings(config.data)
    test = ratings.cases("test")
    scores = FAMILY.scores(model, test.histories)
    found = (scores > scores.gather(1, torch.tensor(test.targets)[:, None])).sum(1) + 1
    assert (found <= 3).float().mean() > 0.6  # 30 items: by chance 0.1
    metrics = [json.loads(line) for line in (id_run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_ndcg@10" in m for m in metrics)


def test_a_fresh_run_keeps_likes_and_learns_ids_of_trained_items_only(recommender_run):
    model, config = load_model(recommender_run)
    ratings = read_ratings(config.data)
    assert model.representation == "id+text" and config.features == 32  # lm_run's width
    assert model.features[1:].norm(dim=1).sub(1).abs().max() < 1e-4  # unit text vectors
    trained = {item for history in ratings.training_histories() for item in history}
    assert ratings.cold and set(model.known.nonzero().flatten().tolist()) == trained
    assert model.history("1") == list(ratings.liked[ratings.users.index("1")])


def test_held_out_items_are_in_no_training_softmax(recommender_run):
    _, config = load_model(recommender_run)
    trainer = FAMILY.trainer(config, torch.device("cpu"), fresh=True)
    ratings = read_ratings(config.data)
    ranked = trainer.ranked()
    assert not ranked[list(ratings.cold)].any() and not ranked[0]
    assert ranked.sum() == len(ratings.catalogue) - len(ratings.cold)


def test_a_resumed_run_ends_bit_identical_to_one_never_stopped(tmp_path):
    config = tiny_recommender(write_movielens(tmp_path / "ml"), id_dropout=0.5)
    config = dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, dropout=0.2),
        train=dataclasses.replace(config.train, snapshot_every=8 * 20),
    )
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(config, straight, progress=False)
    final = latest_checkpoint(straight)
    shutil.copytree(straight, stopped)
    for path in (stopped / "checkpoints").glob(f"{final.name.split('.')[0]}*"):
        path.unlink()  # as if stopped right after the half-way snapshot
    assert latest_checkpoint(stopped).name == "000020.safetensors"
    outcome = train(config, stopped, resume=True, progress=False)
    ours, theirs = read_checkpoint(outcome.checkpoint).modules, read_checkpoint(final).modules
    for name, tensor in theirs["model"].items():
        assert torch.equal(ours["model"][name], tensor), name


def test_eval_reports_every_protocol_beside_popularity(recommender_run):
    report = evaluate(recommender_run, EvalConfig())
    for name in ("hr@10", "ndcg@10", "sampled_hr@10", "sampled_ndcg@10", "cold_hr@10", "cold_ndcg@10"):
        assert 0.0 <= report[name] <= 1.0, name
        assert name in report["popularity"]
    assert report["protocols"]["cold_cases"] > 0
    assert report["popularity"]["cold_hr@10"] == 0.0  # popularity cannot rank an item no one liked in training
    only = evaluate(recommender_run, EvalConfig(metrics="cold_hr@10"))
    assert "cold_hr@10" in only and "hr@10" not in only
    with pytest.raises(UserError, match="not a metric of a recommender"):
        evaluate(recommender_run, EvalConfig(metrics="fid"))


def test_eval_on_another_catalogue_is_refused(recommender_run, tmp_path):
    other = write_movielens(tmp_path / "other")
    (other / "movies.csv").write_text((other / "movies.csv").read_text() + '999,"Extra (2024)",Drama\n')
    with pytest.raises(UserError, match="not the catalogue the run trained on"):
        evaluate(recommender_run, EvalConfig(data=f"movielens:{other}"))


def test_recommendations_leave_out_the_history_and_name_their_reasons(recommender_run):
    model, config = load_model(recommender_run)
    history = model.items_named(["Action Film 0 (2000)", "action film 1", "102"])
    assert history == [1, 2, 3]
    (items,) = FAMILY.recommend(model, [history], dataclasses.replace(config.sample, k=5, explain=2))
    assert len(items) == 5 and not {item["item"] for item in items} & {"100", "101", "102"}
    assert [item["score"] for item in items] == sorted((item["score"] for item in items), reverse=True)
    for item in items:
        assert len(item["because"]) <= 2 and all(reason["weight"] > 0 for reason in item["because"])
        assert {reason["item"] for reason in item["because"]} <= {"100", "101", "102"}


def test_titles_that_match_nothing_or_several_items_are_named(recommender_run):
    model, _ = load_model(recommender_run)
    with pytest.raises(UserError, match="no item matches 'Nope', 'Zilch'"):
        model.items_named(["Action Film 0 (2000)", " Nope", "Zilch"])
    with pytest.raises(UserError, match=r"'twin' names 2 items \(Twin \(1990\): id 128; Twin \(2000\): id 129\)"):
        model.items_named(["twin"])
    assert model.items_named(["Twin (2000)"]) == [30]


def test_recommend_command(recommender_run, capsys):
    assert main(["recommend", str(recommender_run), "--user", "1", "--k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("for user 1 (8 liked") and len(lines) == 4
    assert main(["recommend", str(recommender_run), "--history", "Drama Film 20 (2020); 121", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [item["item"] for item in body["history"]] == ["120", "121"] and len(body["items"]) == 10


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--user", "999"], "unknown user '999'"),
        (["--history", "Nothing Like It"], "no item matches 'Nothing Like It'"),
        (["--history", " ; "], "the history is empty"),
        (["--user", "1", "--k", "0"], "k = 0"),
    ],
)
def test_recommend_command_errors_are_one_line(recommender_run, capsys, flags, message):
    assert main(["recommend", str(recommender_run), *flags]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
