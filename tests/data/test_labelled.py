"""Labelled texts: the PhraseBank's FinBERT split and its agreement levels, banking77's stratified validation
split, a user's CSV or JSON lines, and every unreadable file named with its line in one message."""

import json

import pytest
from sklearn.model_selection import train_test_split

from aigc.core.errors import ConfigError, UserError
from aigc.data.labelled import LabelledDataConfig, read_labelled

LABELS = ("negative", "neutral", "positive")


def write_phrasebank(root, rows=60):
    """A PhraseBank-shaped folder: the 50%-agree file (ISO-8859-1, one 'é' per line) and an AllAgree file holding
    every third of its lines."""
    folder = root / "financial-phrasebank"
    folder.mkdir(parents=True)
    lines = [f"Company {i} of Espoo saw caf\u00e9 sales move {i} % .@{LABELS[i % 3]}" for i in range(rows)]
    (folder / "Sentences_50Agree.txt").write_bytes("\r\n".join(lines).encode("latin-1") + b"\r\n")
    (folder / "Sentences_AllAgree.txt").write_bytes("\r\n".join(lines[::3]).encode("latin-1") + b"\r\n")
    return lines


def test_phrasebank_is_split_as_finbert_split_it_and_decoded_as_latin_1(tmp_path):
    lines = write_phrasebank(tmp_path)
    data = read_labelled(LabelledDataConfig(name="phrasebank", data_dir=str(tmp_path)))
    rest, test = train_test_split(lines, test_size=0.2, random_state=0)
    train, validation = train_test_split(rest, test_size=0.1, random_state=0)
    for name, expected in (("train", train), ("validation", validation), ("test", test)):
        rows = data.splits[name]
        assert [f"{t}@{label}" for t, label in zip(rows.texts, rows.labels, strict=True)] == expected
    assert data.labels == LABELS and "caf\u00e9" in data.splits["train"].texts[0]
    agreed = set(lines[::3])
    assert data.splits["test-allagree"].texts == tuple(t.rpartition("@")[0] for t in test if t in agreed)
    assert data.splits["test"].places[0].startswith(str(tmp_path / "financial-phrasebank" / "Sentences_50Agree.txt:"))


def test_a_higher_agreement_level_keeps_the_split_of_its_own_sentences(tmp_path):
    write_phrasebank(tmp_path)
    every = read_labelled(LabelledDataConfig(name="phrasebank", data_dir=str(tmp_path)))
    agreed = read_labelled(LabelledDataConfig(name="phrasebank:allagree", data_dir=str(tmp_path)))
    for split in ("train", "validation", "test"):
        assert set(agreed.splits[split].texts) <= set(every.splits[split].texts)
    assert agreed.splits["test"].texts == every.splits["test-allagree"].texts
    assert sum(map(len, agreed.splits.values())) == 20


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"A fine sentence .@positive\r\nNo label here\r\n", "Sentences_50Agree.txt:2: no '@' between"),
        (b"A fine sentence .@great\r\n", "Sentences_50Agree.txt:1: label 'great' is not one of negative"),
        (b" @neutral\r\n", "Sentences_50Agree.txt:1: the text is empty"),
    ],
)
def test_a_bad_phrasebank_line_is_named(tmp_path, content, message):
    (tmp_path / "financial-phrasebank").mkdir()
    (tmp_path / "financial-phrasebank" / "Sentences_50Agree.txt").write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_labelled(LabelledDataConfig(name="phrasebank", data_dir=str(tmp_path)))


def test_missing_files_and_unknown_names_say_what_to_do(tmp_path):
    with pytest.raises(UserError, match="Sentences_50Agree.txt not found; put the file there, or pass --data-dir"):
        read_labelled(LabelledDataConfig(name="phrasebank", data_dir=str(tmp_path)))
    with pytest.raises(UserError, match="unknown agreement level"):
        read_labelled(LabelledDataConfig(name="phrasebank:90agree", data_dir=str(tmp_path)))
    with pytest.raises(UserError, match="unknown labelled data set 'imdb'"):
        read_labelled(LabelledDataConfig(name="imdb"))


def test_banking77_validation_is_a_stratified_tenth_of_train(tmp_path):
    folder = tmp_path / "banking77"
    folder.mkdir()
    intents = ["card_arrival", "top_up_failed", "lost_card"]
    train = [f'"where is my card, try {i}",{intents[i % 3]}' for i in range(90)]
    (folder / "train.csv").write_text("text,category\n" + "\n".join(train) + "\n")
    (folder / "test.csv").write_text("text,category\n" + "\n".join(train[:9]) + "\n")
    (folder / "categories.json").write_text(json.dumps(intents))
    data = read_labelled(LabelledDataConfig(name="banking77", data_dir=str(tmp_path)))
    assert data.labels == tuple(intents)
    assert len(data.splits["validation"]) == 9 and sorted(data.splits["validation"].labels) == sorted(intents * 3)
    assert len(data.splits["train"]) == 81 and len(data.splits["test"]) == 9
    assert data.splits["train"].texts[0].startswith("where is my card, try")


def test_bitext_reads_requests_and_intents_split_by_intent(tmp_path):
    from conftest import write_bitext

    write_bitext(tmp_path)
    data = read_labelled(LabelledDataConfig(name="bitext", data_dir=str(tmp_path)))
    assert data.labels == ("cancel_order", "get_refund", "track_order")
    assert [len(data.splits[s]) for s in ("train", "validation", "test")] == [48, 6, 6]
    assert sorted(data.splits["test"].labels) == sorted(data.labels * 2)
    assert all(text.startswith("how do I ") for text in data.splits["train"].texts)
    with pytest.raises(UserError, match="bitext: .*Bitext_Sample_Customer_Support_Training_Dataset.csv not found"):
        read_labelled(LabelledDataConfig(name="bitext", data_dir=str(tmp_path / "elsewhere")))


def write_csv(path, rows=40, delimiter=","):
    lines = [f"text{delimiter}label"] + [f'"text {i}, with a comma"{delimiter}{"ab"[i % 2]}' for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_user_csv_is_split_80_10_10_stratified_and_reproducibly(tmp_path):
    config = LabelledDataConfig(name=f"csv:{write_csv(tmp_path / 'mine.csv')}")
    data = read_labelled(config)
    assert [len(data.splits[s]) for s in ("train", "validation", "test")] == [32, 4, 4]
    assert sorted(data.splits["test"].labels) == ["a", "a", "b", "b"] and data.labels == ("a", "b")
    assert read_labelled(config) == data
    texts = [set(rows.texts) for rows in data.splits.values()]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])


def test_json_lines_read_their_named_fields(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps({"body": f"text {i}", "stars": i % 2 + 1}) for i in range(30)) + "\n")
    data = read_labelled(LabelledDataConfig(name=f"jsonl:{path}", text_column="body", label_column="stars"))
    assert data.labels == ("1", "2") and sum(map(len, data.splits.values())) == 30


@pytest.mark.parametrize(
    ("write", "flags", "message"),
    [
        (
            lambda p: write_csv(p, delimiter=";"),
            {},
            "no column 'text' in its header ('text;label'); it looks delimited by ';': pass --delimiter ';'",
        ),
        (
            lambda p: write_csv(p),
            {"label_column": "stars"},
            "no column 'stars' in its header ('text', 'label'); pass --label-column NAME",
        ),
        (lambda p: p.write_text("text,label\nfine,a\n,b\n"), {}, "mine.csv:3: the text is empty"),
        (lambda p: p.write_text("text,label\nfine,a\nalone\n"), {}, "mine.csv:3: 1 fields where the header has 2"),
        (lambda p: p.write_bytes(b"text,label\ncaf\xe9,a\n"), {}, "mine.csv:2 is not UTF-8 (byte 0xe9 at offset 14)"),
        (lambda p: p.write_text("text,label\n" + "x,a\n" * 30), {}, "every row has the label 'a'"),
        (lambda p: p.write_text("text,label\n" + "x,a\ny,b\n" * 3), {}, "6 rows; give at least 20"),
        (lambda p: p.write_text(""), {}, "is empty; give a CSV file with a header row"),
        (lambda p: p.write_text("text,label\n"), {}, "has a header and no rows"),
        (lambda p: p.write_text('text,label\n"open,a\n'), {}, "mine.csv:2: 1 fields where the header has 2"),
    ],
)
def test_a_bad_csv_is_one_message_naming_the_file(tmp_path, write, flags, message):
    path = tmp_path / "mine.csv"
    write(path)
    with pytest.raises(UserError, match=None) as caught:
        read_labelled(LabelledDataConfig(name=f"csv:{path}", **flags))
    assert message in str(caught.value) and str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_json_line_is_named(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"text": "fine", "label": "a"}\n{"text": "no label"}\nnot json\n')
    with pytest.raises(UserError, match="mine.jsonl:2: expected an object with a text 'text' and a 'label'"):
        read_labelled(LabelledDataConfig(name=f"jsonl:{path}"))
    path.write_text('{"text": "fine", "label": "a"}\nnot json\n')
    with pytest.raises(UserError, match="mine.jsonl:2: not a JSON line"):
        read_labelled(LabelledDataConfig(name=f"jsonl:{path}"))


def test_a_text_may_hold_any_character_and_the_delimiter_is_one(tmp_path):
    path = tmp_path / "mine.csv"
    rows = [f'"line\u2028{i} \x85 with, a separator",{"ab"[i % 2]}' for i in range(20)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    data = read_labelled(LabelledDataConfig(name=f"csv:{path}"))
    assert sum(map(len, data.splits.values())) == 20 and "\u2028" in data.splits["train"].texts[0]
    with pytest.raises(ConfigError, match="one character"):
        LabelledDataConfig(delimiter=";;")


def test_perturbed_copies_change_what_they_say_and_only_that():
    from aigc.data.perturb import perturbed

    texts = ["Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the third quarter of 2008 ."] * 40
    typos = perturbed(texts, "typos-10")
    assert typos == perturbed(texts, "typos-10") and len(set(typos)) > 1  # the same copies every time, text by text
    words = sum(len(text.split()) for text in texts)
    changed = sum(
        a != b for text, new in zip(texts, typos, strict=True) for a, b in zip(text.split(), new.split(), strict=True)
    )
    assert 0.05 < changed / words < 0.15  # about a tenth of the words
    cased = perturbed(texts, "case")
    assert [t.lower() for t in cased] == [t.lower() for t in texts] and cased != texts
    numbers = perturbed(texts, "numbers")

    def letters(text):
        return [c for c in text if not c.isdigit()]

    assert numbers != texts and all(letters(n) == letters(t) for n, t in zip(numbers, texts, strict=True))
