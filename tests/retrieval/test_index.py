"""The search index of question-answer pairs: Bitext's pairs split as its intents are, BM25 over the training
questions through bm25s, saved and loaded without tokenising the corpus again, and `aigc index build` and `query`
with their errors in one line."""

import json
import shutil

import pytest

from aigc.cli import main as aigc
from aigc.data.labelled import LabelledDataConfig, read_labelled
from aigc.data.support import read_pairs
from aigc.retrieval.index import Index
from conftest import write_bitext


@pytest.fixture
def bitext(tmp_path):
    write_bitext(tmp_path)
    return str(tmp_path)


def test_pairs_split_as_the_intents_do_and_keep_their_replies_whole(bitext):
    pairs = read_pairs("bitext", bitext)
    labelled = read_labelled(LabelledDataConfig(name="bitext", data_dir=bitext))
    for split, rows in labelled.splits.items():
        assert [p.question for p in pairs[split]] == list(rows.texts)
        assert [p.intent for p in pairs[split]] == list(rows.labels)
    reply = pairs["train"][0].answer
    assert "\n\n1. Open {{Order History}}." in reply and f"order {pairs['train'][0].id}, " in reply


def test_a_saved_index_finds_a_question_s_own_pair_without_tokenising_again(bitext, tmp_path, monkeypatch):
    import bm25s

    train = read_pairs("bitext", bitext)["train"]
    Index.build(train, "bitext/train").save(tmp_path / "index")
    calls = []
    monkeypatch.setattr(bm25s, "tokenize", lambda *a, **k: calls.append(a) or [])
    index = Index.load(tmp_path / "index")
    assert calls == [] and index.pairs == train and index.source == "bitext/train"
    monkeypatch.undo()
    wanted = train[5]
    hits = index.query([wanted.question, "zebra xylophone"], k=3)
    assert hits[0][0].pair == wanted and hits[0][0].rank == 1 and hits[0][0].score > hits[0][1].score
    assert hits[1] == []  # no word known: no pair shares one
    sharing = [p for p in train if {"cancel", "order"} & set(p.question.split())]
    assert {h.pair for h in index.query(["cancel order"], k=500)[0]} == set(sharing)  # every pair with a word


def test_index_build_and_query_from_the_command_line(bitext, tmp_path, capsys):
    out = tmp_path / "index"
    assert aigc(["index", "build", "--data", "bitext", "--data-dir", bitext, "--out", str(out)]) == 0
    assert "indexed 48 pairs of bitext/train" in capsys.readouterr().out
    question = read_pairs("bitext", bitext)["train"][3].question
    assert aigc(["index", "query", str(out), "--text", question, "--k", "2", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["text"] == question and [h["rank"] for h in found["hits"]] == [1, 2]
    assert found["hits"][0]["question"] == question and "{{Order History}}" in found["hits"][0]["answer"]
    assert aigc(["index", "query", str(out), "--text", question]) == 0
    assert capsys.readouterr().out.startswith(question + "\n  1. ")


@pytest.mark.parametrize(
    ("break_it", "argv", "message"),
    [
        (None, ["query", "{tmp}/none", "--text", "refund"], "none is not a search index (no readable index.json)"),
        ("bm25", ["query", "{tmp}/index", "--text", "refund"], "the index is incomplete or damaged"),
        ("format", ["query", "{tmp}/index", "--text", "refund"], "not of format 1, which this aigc reads; build it"),
        (None, ["query", "{tmp}/index", "--text", "refund", "--k", "0"], "--k 0: give 1 or more"),
        (None, ["query", "{tmp}/index", "--text", " "], "--text is empty"),
        (None, ["build", "--data", "bitext", "--data-dir", "{tmp}/data", "--split", "dev", "--out", "{tmp}/x"],
         "--split dev: bitext has the splits train, validation, test"),
        (None, ["build", "--data", "faq", "--out", "{tmp}/x"], "unknown question-answer data set 'faq'"),
    ],
)  # fmt: skip
def test_a_bad_index_or_flag_is_one_line(tmp_path, capsys, break_it, argv, message):
    write_bitext(tmp_path / "data")
    Index.build(read_pairs("bitext", str(tmp_path / "data"))["train"], "bitext/train").save(tmp_path / "index")
    if break_it == "bm25":
        shutil.rmtree(tmp_path / "index" / "bm25")
    if break_it == "format":
        (tmp_path / "index" / "index.json").write_text('{"format": 99}')
    assert aigc(["index", *[arg.replace("{tmp}", str(tmp_path)) for arg in argv]]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_dense_index_fuses_its_ranking_with_bm25_s_and_reloads_as_saved(bitext, tmp_path, lm_run):
    import torch

    train = read_pairs("bitext", bitext)["train"]
    built = Index.build(train, "bitext/train", lm_run)
    built.save(tmp_path / "index")
    family = type(built.dense.family)
    with pytest.MonkeyPatch.context() as patch:  # loading encodes nothing again
        patch.setattr(family, "embed", lambda *args: pytest.fail("the index encoded its questions again"))
        index = Index.load(tmp_path / "index")
    assert torch.equal(index.dense.vectors, built.dense.vectors) and index.dense.vectors.shape[0] == len(train)
    assert torch.allclose(index.dense.vectors.norm(dim=1), torch.ones(len(train)))
    wanted = train[7]
    (best, *_), *_ = index.query([wanted.question], k=3)
    assert best.pair == wanted and set(best.scores) == {"bm25", "dense"}
    assert best.scores["dense"] == pytest.approx(1.0, abs=1e-4)  # the question's own vector
    assert best.score == pytest.approx(2 / 61)  # first in both rankings


def test_index_build_takes_an_encoder_from_the_command_line(bitext, tmp_path, lm_run, capsys):
    out = tmp_path / "fused"
    argv = ["index", "build", "--data", "bitext", "--data-dir", bitext, "--encoder", str(lm_run), "--out", str(out)]
    assert aigc(argv) == 0
    assert "(BM25 and dense vectors)" in capsys.readouterr().out
    assert aigc(["index", "query", str(out), "--text", "how do I get refund", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert len(hits) == 5 and "dense" in hits[0]["scores"]
    assert aigc(["index", "build", "--data", "bitext", "--data-dir", bitext, "--encoder", str(tmp_path / "no"),
                 "--out", str(tmp_path / "x")]) == 2  # fmt: skip
    assert "no does not exist; give a language-model run" in capsys.readouterr().err


def test_reciprocal_rank_fusion_adds_one_over_60_plus_each_rank(bitext):
    index = Index.build(read_pairs("bitext", bitext)["train"][:4], "bitext/train")
    ranking = {"bm25": {0: 9.0, 1: 5.0, 2: 1.0}, "dense": {2: 0.9, 1: 0.8, 3: 0.1}}
    hits = index.hits(ranking, k=4)
    assert [h.pair for h in hits] == [index.pairs[i] for i in (2, 1, 0, 3)]  # 1/63 + 1/61 > 1/62 + 1/62 > 1/61
    assert hits[0].score == pytest.approx(1 / 63 + 1 / 61) and hits[0].scores == {"bm25": 1.0, "dense": 0.9}
    assert hits[1].score == pytest.approx(2 / 62) and hits[2].score == pytest.approx(1 / 61)
    assert hits[3].score == pytest.approx(1 / 63) and hits[3].scores == {"dense": 0.1}


def test_an_index_refuses_an_encoder_that_is_not_a_language_model_or_has_changed(bitext, tmp_path, lm_run,
                                                                                 classifier_run):  # fmt: skip
    from aigc.core.checkpoint import latest_checkpoint
    from aigc.core.errors import UserError

    train = read_pairs("bitext", bitext)["train"]
    with pytest.raises(UserError, match="is a classifier run; give a language-model run"):
        Index.build(train, "bitext/train", classifier_run)
    encoder = tmp_path / "lm.safetensors"
    shutil.copy(latest_checkpoint(lm_run), encoder)
    Index.build(train, "bitext/train", encoder).save(tmp_path / "index")
    shutil.copy(latest_checkpoint(classifier_run), encoder)  # another checkpoint where the encoder was
    with pytest.raises(UserError, match="was encoded by .*lm.safetensors, which is gone or has changed since"):
        Index.load(tmp_path / "index")
    encoder.unlink()
    with pytest.raises(UserError, match="which is gone or has changed since; build the index again"):
        Index.load(tmp_path / "index")


def test_a_text_s_vector_does_not_depend_on_its_batch(lm_run):
    import torch

    from aigc.families.registry import family_of, load_model

    model, config = load_model(lm_run)
    family = family_of(config)
    texts = ["line 1: the fox", "line 22: the cat jumps over the dog twice", "the owl"]
    together = family.embed(model, texts)
    alone = torch.cat([family.embed(model, [text]) for text in texts])
    assert torch.allclose(together, alone, atol=1e-5) and together.shape == (3, config.model.width)
