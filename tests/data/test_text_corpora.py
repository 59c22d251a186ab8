"""Text corpora and tokenizers: exact round trips, nanoGPT's split, the token cache, and every bad input as one
UserError."""

import json

import numpy as np
import pytest
from transformers import PreTrainedTokenizerFast

from aigc.core.errors import UserError
from aigc.data import text
from aigc.data.text import SHAKESPEARE, TextDataConfig, read_corpus, split_text, token_ids
from aigc.data.tokenizer import TextTokenizer

SAMPLE = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_tokenizers_round_trip_exactly(kind, tmp_path):
    tokenizer = TextTokenizer.train(kind, SAMPLE * 20, vocab_size=300)
    assert tokenizer.decode(tokenizer.encode(SAMPLE)) == SAMPLE
    tokenizer.save(tmp_path / "tokenizer.json")
    loaded = TextTokenizer.load(tmp_path / "tokenizer.json")
    assert loaded.kind == kind and loaded.encode(SAMPLE) == tokenizer.encode(SAMPLE)
    # the file is the Hugging Face format: transformers reads it as it is and agrees
    fast = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    assert fast.encode(SAMPLE, add_special_tokens=False) == tokenizer.encode(SAMPLE)


def test_char_tokenizer_is_one_token_per_character_and_names_an_unknown_one():
    tokenizer = TextTokenizer.train("char", "ab\nc é")
    assert tokenizer.vocab_size == 6 and tokenizer.encode("é\nab") == [5, 0, 2, 3]
    with pytest.raises(UserError, match=r"character 'z' \(U\+007A\) is not in this model's vocabulary"):
        tokenizer.encode("abz")


def test_bpe_is_byte_level_so_it_meets_no_unknown_character():
    tokenizer = TextTokenizer.train("bpe", SAMPLE * 20, vocab_size=300)
    unseen = "Ωmega ☃ 𝄞"
    assert tokenizer.vocab_size <= 300 and tokenizer.decode(tokenizer.encode(unseen)) == unseen
    assert len(tokenizer.encode(SAMPLE)) < len(SAMPLE)  # it learnt merges
    with pytest.raises(UserError, match="at least 256"):
        TextTokenizer.train("bpe", SAMPLE, vocab_size=100)


def test_split_is_nanogpts_first_90_percent_of_characters():
    train, validation = split_text("x" * 1_115_394)
    assert len(train) == 1_003_854 and len(validation) == 111_540  # nanoGPT's shakespeare_char numbers


def test_the_embedded_default_needs_no_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AIGC_OFFLINE", "1")
    corpus = read_corpus(TextDataConfig())
    assert len(corpus.train) > 100_000 and len(corpus.validation) == pytest.approx(len(corpus.train) / 9, rel=1e-3)
    assert "assert" in corpus.train  # Python's documentation


def test_shakespeare_is_found_like_mnist_and_checked_by_md5(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIGC_OFFLINE", "1")
    with pytest.raises(UserError, match="shakespeare: input.txt not found and could not be downloaded"):
        read_corpus(TextDataConfig(name="shakespeare", data_dir=str(tmp_path)))
    (tmp_path / "shakespeare").mkdir()
    (tmp_path / "shakespeare" / "input.txt").write_text(SAMPLE)
    with pytest.raises(UserError, match="is not tiny Shakespeare"):
        read_corpus(TextDataConfig(name="shakespeare", data_dir=str(tmp_path)))
    monkeypatch.setattr(text, "SHAKESPEARE", SHAKESPEARE.__class__("input.txt", _md5(SAMPLE), ()))
    corpus = read_corpus(TextDataConfig(name="shakespeare", data_dir=str(tmp_path)))
    assert corpus.train + corpus.validation == SAMPLE and len(corpus.train) == int(len(SAMPLE) * 0.9)


def _md5(content: str) -> str:
    import hashlib

    return hashlib.md5(content.encode()).hexdigest()


def test_gutenberg_splits_each_book_so_every_author_is_in_both(tmp_path):
    books = tmp_path / "gutenberg"
    books.mkdir()
    (books / "a.txt").write_text("A" * 100)
    (books / "b.txt").write_bytes("Brunetière ".encode("latin-1") * 10)  # as NLTK ships one of its books
    corpus = read_corpus(TextDataConfig(name="gutenberg", data_dir=str(tmp_path)))
    assert corpus.train.count("A") == 90 and corpus.validation.count("A") == 10
    assert "Brunetière" in corpus.train and "è" in corpus.validation


def test_text_paths_files_folders_and_jsonl(tmp_path, capsys):
    (tmp_path / "one.txt").write_text("hello world\n")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha\n")
    (folder / "sub" / "b.txt").write_text("beta\n")
    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "first"}) + "\n\n" + json.dumps({"text": "second"}))

    def whole(name: str) -> str:
        corpus = read_corpus(TextDataConfig(name=f"text:{tmp_path / name}"))
        return corpus.train + corpus.validation

    assert whole("one.txt") == "hello world\n"
    assert whole("folder") == "alpha\n\nbeta\n"
    assert whole("docs.jsonl") == "first\nsecond"

    (folder / "bad.txt").write_bytes(b"\xff\xfe binary")
    with pytest.raises(UserError, match="bad.txt is not UTF-8 text"):
        read_corpus(TextDataConfig(name=f"text:{folder}"))
    corpus = read_corpus(TextDataConfig(name=f"text:{folder}", skip_bad_files=True))
    assert corpus.train + corpus.validation == "alpha\n\nbeta\n"
    assert "skipped 1 undecodable file" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"text": "ok"}\nnot json\n', "docs.jsonl:2: not a JSON line"),
        ('{"body": "no text field"}\n', 'docs.jsonl:1: each line must be an object with a "text" string'),
        ("\n\n", "holds no text"),
    ],
)
def test_bad_jsonl_is_one_line_naming_the_line(tmp_path, content, message):
    (tmp_path / "docs.jsonl").write_text(content)
    with pytest.raises(UserError, match=message):
        read_corpus(TextDataConfig(name=f"text:{tmp_path / 'docs.jsonl'}"))


def test_unknown_and_missing_corpora(tmp_path):
    with pytest.raises(UserError, match="unknown text data set 'wikipedia'"):
        read_corpus(TextDataConfig(name="wikipedia"))
    with pytest.raises(UserError, match="does not exist"):
        read_corpus(TextDataConfig(name=f"text:{tmp_path / 'nothing.txt'}"))
    with pytest.raises(UserError, match="not a readable tokenizer.json"):
        (tmp_path / "tokenizer.json").write_text("{not json")
        TextTokenizer.load(tmp_path / "tokenizer.json")


def test_token_ids_are_cached_and_memory_mapped(tmp_path, monkeypatch):
    tokenizer = TextTokenizer.train("char", SAMPLE)
    ids = token_ids(SAMPLE, tokenizer, cache=tmp_path)
    assert isinstance(ids, np.memmap) and ids.dtype == np.uint16 and ids.tolist() == tokenizer.encode(SAMPLE)
    (cached,) = tmp_path.iterdir()
    monkeypatch.setattr(tokenizer, "encode", lambda text: pytest.fail("tokenised twice"))
    assert token_ids(SAMPLE, tokenizer, cache=tmp_path).tolist() == ids.tolist()
    other = TextTokenizer.train("char", SAMPLE + "?")  # another tokenizer: another cache entry
    token_ids(SAMPLE, other, cache=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2 and cached.exists()
