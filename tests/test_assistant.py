"""The customer-service assistant: its training conversations never retrieve their own pair, its intent comes from
the classifier (which then chooses among the neighbours) or from the nearest pair, its parts are pinned and
checked against each other, and `aigc assistant data|create|ask` work from the command line with one-line errors."""

import json
import shutil

import pytest

from aigc import assistant
from aigc.cli import main as aigc
from aigc.core.errors import UserError
from aigc.retrieval.index import Index
from conftest import TINY_CLASSIFIER


@pytest.fixture
def parts(assistant_parts):
    return assistant_parts


def created(parts, out, intents=True, answers=1):
    argv = ["assistant", "create", "--generator", str(parts / "gen"), "--index", str(parts / "index"),
            "--answers", str(answers), "--out", str(out)]  # fmt: skip
    return aigc(argv + (["--intents", str(parts / "intents")] if intents else []))


def test_a_training_conversation_retrieves_other_pairs_of_its_own_intent_first(parts):
    index = Index.load(parts / "index")
    rows = [json.loads(line) for line in (parts / "chat.jsonl").read_text().splitlines()]
    assert len(rows) == len(index.pairs)
    for pair, row in zip(index.pairs, rows, strict=True):
        system, user, reply = row["messages"]
        assert (user["content"], reply["content"]) == (pair.question, pair.answer)
        assert system["content"].startswith(f"Intent: {pair.intent}\nSimilar request: ")
        similar = system["content"].split("\n")[1].removeprefix("Similar request: ")
        neighbour = next(p for p in index.pairs if p.question == similar)
        assert neighbour.id != pair.id and neighbour.intent == pair.intent
    two = assistant.training_rows(index, answers=2)
    assert all(row["messages"][0]["content"].count("Its answer: ") == 2 for row in two)
    none = assistant.training_rows(index, answers=0)
    assert none[0]["messages"][0]["content"] == f"Intent: {index.pairs[0].intent}"


def test_the_classifier_s_intent_chooses_among_the_neighbours(parts, tmp_path):
    assert created(parts, tmp_path / "support") == 0
    helper, model, config, generator = assistant.load(tmp_path / "support")
    assert generator.parent.parent == (parts / "gen").resolve() and config.chat_template
    question = "how do I track order no. 1000"
    family, classifier, classifier_config = helper.intents
    labels = family.labels(classifier)
    (first,) = helper.contexts([question])
    probabilities = family.classify(classifier, [question], classifier_config.sample)
    assert first.source == "classifier" and first.intent == labels[int(probabilities.argmax())]
    # the classifier's intent picks the best-ranked neighbour of that intent; with none among them, the best one
    nearest = Index.load(parts / "index").query([question], assistant.CANDIDATES)[0]
    assert nearest[0].pair.intent == "track_order" and "cancel_order" in [hit.pair.intent for hit in nearest]
    assert {hit.pair.intent for hit in Index.load(parts / "index").query(["track"], 50)[0]} == {"track_order"}
    for asked, told, wanted in [(question, "cancel_order", "cancel_order"), (question, "track_order", "track_order"),
                                ("track", "cancel_order", "track_order")]:  # fmt: skip
        helper.intents = (Told(told, labels), None, classifier_config)
        (context,) = helper.contexts([asked])
        assert context.intent == told and [hit.pair.intent for hit in context.hits] == [wanted]
    helper.intents = (family, classifier, classifier_config)
    messages, context = helper.prompt([{"role": "user", "content": "hello"}, {"role": "user", "content": question}])
    assert (
        context == first
        and messages[0]["role"] == "system"
        and messages[1:]
        == [
            {"role": "user", "content": "hello"},
            {"role": "user", "content": question},
        ]
    )
    assert (
        f"Intent: {context.intent}" in messages[0]["content"] and context.hits[0].pair.answer in messages[0]["content"]
    )
    with pytest.raises(UserError, match="no customer message"):
        helper.prompt([{"role": "system", "content": "be kind"}])


class Told:
    """A stand-in intent classifier that gives every text the intent `told`."""

    def __init__(self, told, labels):
        self.told, self.names = told, labels

    def labels(self, model):
        return self.names

    def classify(self, model, texts, sample):
        import torch

        return torch.nn.functional.one_hot(torch.tensor([self.names.index(self.told)] * len(texts)), len(self.names))


def test_without_a_classifier_the_nearest_pair_gives_the_intent(parts, tmp_path):
    assert created(parts, tmp_path / "support", intents=False, answers=2) == 0
    helper, *_ = assistant.load(tmp_path / "support")
    index = Index.load(parts / "index")
    pair = index.pairs[4]
    (context,) = helper.contexts([pair.question])
    assert context.source == "neighbours" and context.intent == pair.intent and context.hits[0].pair == pair
    assert context.extension() == {
        "intent": pair.intent,
        "intent_source": "neighbours",
        "retrieved": [hit.pair.id for hit in context.hits],
        "retrieved_intents": [hit.pair.intent for hit in context.hits],
    }
    assert helper.info() == {"index": "bitext/train", "pairs": 72, "answers": 2, "intent_source": "neighbours"}


def test_a_part_replaced_since_creation_or_built_for_another_model_is_refused(parts, tmp_path, capsys):
    out, index = tmp_path / "support", tmp_path / "index"
    shutil.copytree(parts / "index", index)
    argv = [
        "assistant",
        "create",
        "--generator",
        str(parts / "gen"),
        "--index",
        str(index),
        "--out",
        str(out),
    ]
    assert aigc(argv) == 0
    assistant.load(out)
    Index.load(index).save(index)  # built again since
    with pytest.raises(UserError, match=f"its index {index} is gone or has changed since it was created"):
        assistant.load(out)
    # an intent classifier of other labels (another data set's) does not fit this index
    other = tmp_path / "other"
    rows = "".join(f"text {i},label{i % 2}\n" for i in range(40))
    (tmp_path / "other.csv").write_text("text,label\n" + rows)
    argv = ["train", "classifier", "--data", f"csv:{tmp_path / 'other.csv'}", *TINY_CLASSIFIER, "--out", str(other)]
    assert aigc(argv) == 0
    capsys.readouterr()
    argv = ["assistant", "create", "--generator", str(parts / "gen"), "--index", str(parts / "index"),
            "--intents", str(other), "--out", str(tmp_path / "mixed")]  # fmt: skip
    assert aigc(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "does not know the intents cancel_order, get_refund, track_order" in error
    argv[argv.index("--intents") + 1] = str(parts / "intents")
    argv[argv.index("--generator") + 1] = str(parts / "intents")
    assert aigc(argv) == 2
    assert "is not a chat model" in capsys.readouterr().err


def test_ask_answers_from_the_command_line_and_says_what_it_found(parts, tmp_path, capsys):
    assert created(parts, tmp_path / "support") == 0
    capsys.readouterr()
    argv = ["assistant", "ask", str(tmp_path / "support"), "--text", "how do I get refund no. 3", "--text",
            "cancel order 5", "--max-tokens", "12", "--json"]  # fmt: skip
    assert aigc(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == ["how do I get refund no. 3", "cancel order 5"]
    assert all(line["intent_source"] == "classifier" and len(line["retrieved"]) == 1 for line in lines)
    assert all(isinstance(line["reply"], str) for line in lines)
    assert aigc(argv) == 0 and [json.loads(line) for line in capsys.readouterr().out.splitlines()] == lines
    for bad, message in [
        (["assistant", "ask", str(parts), "--text", "x"], "is not an assistant (no readable assistant.json)"),
        (["assistant", "ask", str(tmp_path / "support"), "--text", " "], "--text is empty"),
        (["assistant", "data", str(parts / "gen"), "--out", str(tmp_path / "x.jsonl")], "is not a search index"),
        (["assistant", "create", "--generator", str(tmp_path / "nope"), "--index", str(parts / "index"), "--out",
          str(tmp_path / "s")], "--generator"),
    ]:  # fmt: skip
        assert aigc(bad) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and message in error


def test_a_long_retrieved_answer_is_cut_at_its_last_line_end_within_the_limit():
    from aigc.data.support import Pair
    from aigc.retrieval.index import Hit

    lines = [f"{i}. Open the page and choose the order you want." for i in range(40)]
    long = Pair(1, "how do I cancel", "\n".join(lines), "cancel_order")
    message = assistant.system_message("cancel_order", [Hit(long, 1.0, 1, {"bm25": 1.0})])
    shown = message.split("Its answer: ", 1)[1]
    assert len(shown) <= assistant.ANSWER_CHARS and long.answer.startswith(shown) and shown.endswith("you want.")
    short = Pair(2, "how do I track", "Open {{Order History}}.", "track_order")
    assert assistant.system_message("", [Hit(short, 1.0, 1, {})]).endswith("Its answer: Open {{Order History}}.")
