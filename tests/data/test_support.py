"""A user's question-answer pairs from CSV or JSON lines, the fields named by flags, the intent optional, split
as Bitext's are; and what a bad file gets: one line naming the file and line."""

import json

import pytest

from aigc.cli import main as aigc
from aigc.core.errors import UserError
from aigc.data.support import Columns, read_pairs


def test_pairs_are_read_from_csv_and_json_lines_by_the_columns_named(tmp_path):
    rows = [(f"question {i}", f"answer {i}\nsecond line", f"intent{i % 2}") for i in range(30)]
    (tmp_path / "faq.csv").write_text("q;a;kind\n" + "".join(f'{q};"{a}";{k}\n' for q, a, k in rows))
    splits = read_pairs(f"csv:{tmp_path / 'faq.csv'}", columns=Columns("q", "a", "kind", ";"))
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [24, 3, 3]
    every = sorted((p for split in splits.values() for p in split), key=lambda p: p.id)
    assert [(p.question, p.answer, p.intent) for p in every] == rows
    assert {p.intent for p in splits["test"]} == {"intent0", "intent1"}  # stratified by intent
    with open(tmp_path / "faq.jsonl", "w") as f:
        f.writelines(json.dumps({"question": q, "answer": a}) + "\n" for q, a, _ in rows)
    plain = read_pairs(f"jsonl:{tmp_path / 'faq.jsonl'}")  # no intent field: pairs without intents
    assert {p.intent for split in plain.values() for p in split} == {""}
    assert sum(map(len, plain.values())) == 30


def test_an_intent_column_is_taken_when_the_file_has_one_and_null_is_none(tmp_path):
    (tmp_path / "faq.csv").write_text("question,answer,intent\n" + "".join(f"q{i},a{i},only\n" for i in range(30)))
    pairs = read_pairs(f"csv:{tmp_path / 'faq.csv'}")
    assert {p.intent for split in pairs.values() for p in split} == {"only"}  # one intent is fine for pairs
    rows = [{"question": f"q{i}", "answer": f"a{i}", "intent": None if i % 2 else 7} for i in range(30)]
    (tmp_path / "faq.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    pairs = read_pairs(f"jsonl:{tmp_path / 'faq.jsonl'}")
    assert {p.id: p.intent for split in pairs.values() for p in split} == {i: "" if i % 2 else "7" for i in range(30)}
    with pytest.raises(UserError, match="--question-column and --answer-column both name the column 'question'"):
        read_pairs(f"csv:{tmp_path / 'faq.csv'}", columns=Columns("question", "question"))


@pytest.mark.parametrize(
    "content, columns, message",
    [
        ('question,answer\n"open,x\n', Columns(), "faq.csv:2: 1 fields where the header has 2; a quote left open?"),
        (
            "question,reply\nq,a\n",
            Columns(),
            "no column 'answer' in its header ('question', 'reply'); pass --answer-column",
        ),
        ("question,answer\n ,a\n", Columns(), "faq.csv:2: the text is empty"),
        ("question,answer\nq,a\n", Columns(intent="topic"), "no column 'topic' in its header"),
    ],
)
def test_a_bad_file_is_one_line_naming_where(tmp_path, content, columns, message):
    (tmp_path / "faq.csv").write_text(content)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        read_pairs(f"csv:{tmp_path / 'faq.csv'}", columns=columns)


def test_index_build_takes_the_column_flags(tmp_path, capsys):
    (tmp_path / "faq.csv").write_text("q,a\n" + "".join(f"how to reset login {i},see page {i}\n" for i in range(30)))
    out = tmp_path / "index"
    argv = ["index", "build", "--data", f"csv:{tmp_path / 'faq.csv'}", "--question-column", "q", "--out", str(out)]
    assert aigc([*argv, "--answer-column", "a"]) == 0
    assert f"indexed 24 pairs of csv:{tmp_path / 'faq.csv'}/train" in capsys.readouterr().out
    assert aigc(argv) == 2  # the answers are in column a, not answer
    assert "no column 'answer' in its header ('q', 'a'); pass --answer-column NAME" in capsys.readouterr().err
    assert aigc([*argv, "--answer-column", "a", "--delimiter", ";;"]) == 2
    assert "--delimiter ';;': give one character" in capsys.readouterr().err
    assert aigc(["index", "build", "--data", "faq.csv", "--out", str(out)]) == 2
    assert (
        "unknown question-answer data set 'faq.csv'; choose bitext, csv:PATH or jsonl:PATH" in capsys.readouterr().err
    )
