"""Text corpora for language models, held as token ids: `shakespeare` (tiny Shakespeare), `gutenberg` (ten
public-domain books), `reuters` (Reuters-21578 financial newswire), `python-docs` (the Python documentation
topics every CPython ships in `pydoc_data`: the embedded default, no download), `movielens[:DIR]` (the text of a
recommender's items, one a line: what its text model is fine-tuned on) and `text:PATH` (a .txt file, a folder of
them, or a .jsonl with a "text" field).

`reuters` keeps its own split (ApteMod's training and test articles); every other corpus is split as nanoGPT
splits tiny Shakespeare: the first 90% of the characters train, the last 10% validate; `gutenberg` applies that
rule to each book, so every author is in both splits. Token ids are cached as flat uint16 (or uint32) files named
by a checksum of the text and the tokenizer, and memory-mapped, so a corpus is tokenised once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from aigc.core.config import Config
from aigc.core.errors import UserError
from aigc.core.io import atomic_write, file_digest
from aigc.data.download import Resource, data_roots, find_file, locate
from aigc.data.ratings import RatingsConfig, read_ratings
from aigc.data.tokenizer import TextTokenizer, TokenizerKind

SHAKESPEARE = Resource(
    "input.txt",
    "6fb458f1232090904fb40fe944165e91",
    ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare",),
)
TRAIN_SHARE = 0.9
Split = Literal["train", "validation"]


@dataclass(frozen=True)
class TextDataConfig(Config):
    """Which text to train on and how it becomes tokens."""

    name: str = field(
        default="python-docs",
        metadata={
            "help": "shakespeare | gutenberg | reuters | python-docs | movielens[:DIR] (its items' text) | "
            "text:PATH (.txt, folder, .jsonl) | chat:PATH"
            " | bitext (conversations)",
            "flag": "--data",
        },
    )
    data_dir: str | None = field(default=None, metadata={"help": "root holding the data set files"})
    tokenizer: TokenizerKind = field(default="char", metadata={"help": "char, or byte-level bpe"})
    vocab_size: int = field(default=512, metadata={"help": "tokens of a bpe tokenizer", "min": 256})
    skip_bad_files: bool = field(default=False, metadata={"help": "skip undecodable files of a text: folder"})


@dataclass(frozen=True)
class Corpus:
    """A corpus's two splits as text."""

    train: str
    validation: str

    def split(self, name: Split) -> str:
        return self.train if name == "train" else self.validation


def split_text(text: str) -> tuple[str, str]:
    """(the first 90% of the characters, the last 10%): nanoGPT's rule."""
    cut = int(len(text) * TRAIN_SHARE)
    return text[:cut], text[cut:]


def read_corpus(config: TextDataConfig) -> Corpus:
    """The corpus `config.name` names, split; UserError when it is missing, empty or undecodable."""
    name = config.name
    if name.startswith("text:"):
        texts = user_texts(Path(name.removeprefix("text:")), config.skip_bad_files)
        return Corpus(*split_text("\n".join(texts)))
    if name.partition(":")[0] == "movielens":  # a recommender's catalogue: each item's text, a line each
        catalogue = read_ratings(RatingsConfig(name=name, data_dir=config.data_dir)).catalogue
        return Corpus(*split_text("\n".join(catalogue.texts)))
    if name not in READERS:
        raise UserError(
            f"unknown text data set {name!r}; choose one of {', '.join(READERS)}, movielens[:DIR], bitext, "
            "text:PATH, or chat:PATH"
        )
    return READERS[name](config)


def read_shakespeare(config: TextDataConfig) -> Corpus:
    (path,) = locate("shakespeare", (SHAKESPEARE,), config.data_dir)
    if file_digest(path, "md5") != SHAKESPEARE.md5:
        raise UserError(f"{path} is not tiny Shakespeare (md5 differs); use text:{path} for another text")
    return Corpus(*split_text(path.read_text(encoding="utf-8")))


def read_gutenberg(config: TextDataConfig) -> Corpus:
    roots = data_roots(config.data_dir)
    for root in roots:
        books = sorted((root / "gutenberg").glob("*.txt"))
        if books:
            splits = [split_text(book_text(book)) for book in books]
            return Corpus("\n".join(train for train, _ in splits), "\n".join(valid for _, valid in splits))
    places = " or ".join(str(root / "gutenberg") for root in roots)
    raise UserError(f"gutenberg: no .txt books found; put them in {places}, or pass --data-dir DIR")


def book_text(path: Path) -> str:
    """A Gutenberg book as NLTK ships it: UTF-8, except chesterton-ball.txt, which is Latin-1."""
    try:
        return decode(path)
    except UserError:
        return path.read_text(encoding="latin-1")


def read_python_docs(config: TextDataConfig) -> Corpus:
    from pydoc_data.topics import topics

    return Corpus(*split_text("\n".join(topics[key] for key in sorted(topics))))


def read_reuters(config: TextDataConfig) -> Corpus:
    """Reuters-21578 (ApteMod, as NLTK ships it): its own split - the `training/` articles train, the `test/` ones
    validate - each article's text in the order of its number, articles apart by a blank line."""
    roots = data_roots(config.data_dir)
    for root in roots:
        folder = root / "reuters"
        if (folder / "training").is_dir() and (folder / "test").is_dir():
            return Corpus(*("\n\n".join(map(book_text, articles(folder / split))) for split in ("training", "test")))
    places = " or ".join(str(root / "reuters") for root in roots)
    raise UserError(f"reuters: no training/ and test/ folders of articles in {places}; pass --data-dir DIR")


def articles(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


READERS = {
    "shakespeare": read_shakespeare,
    "gutenberg": read_gutenberg,
    "reuters": read_reuters,
    "python-docs": read_python_docs,
}


def user_texts(path: Path, skip_bad_files: bool) -> list[str]:
    """The texts of a .txt file, a folder of .txt files (recursive, in path order) or a .jsonl's "text" fields."""
    if not path.exists():
        raise UserError(f"text:{path} does not exist; give a .txt file, a folder of them, or a .jsonl")
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        texts, bad = [], []
        for file in files:
            try:
                texts.append(decode(file))
            except UserError:
                if not skip_bad_files:
                    raise
                bad.append(file)
        if bad:
            print(f"notice: skipped {len(bad)} undecodable file(s) of {path}, e.g. {bad[0]}")
    elif path.suffix == ".jsonl":
        texts = jsonl_texts(path)
    else:
        texts = [decode(path)]
    if not any(texts):
        raise UserError(f"text:{path} holds no text; give a .txt file, a folder of them, or a .jsonl")
    return texts


def decode(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(
            f"{path} is not UTF-8 text (byte {error.start}); convert it, or pass --skip-bad-files in a folder"
        ) from None


def json_lines(path: Path):
    """(line number, record) of each non-blank line of a UTF-8 .jsonl; UserError naming a line that is not JSON."""
    for number, line in enumerate(decode(path).split("\n"), 1):  # not splitlines: U+2028 may be in a text
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{number}: not a JSON line ({error.msg})") from None


def jsonl_texts(path: Path) -> list[str]:
    texts = []
    for number, record in json_lines(path):
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise UserError(f'{path}:{number}: each line must be an object with a "text" string')
        texts.append(record["text"])
    return texts


def token_ids(text: str, tokenizer: TextTokenizer, cache: Path | None = None) -> np.ndarray:
    """`text` as token ids, memory-mapped from the cache (tokenised and written there the first time)."""
    dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.uint32
    key = hashlib.sha256(text.encode() + b"\0" + tokenizer.to_str().encode()).hexdigest()[:32]
    path = (cache or Path.home() / ".cache" / "aigc" / "tokens") / f"{key}.{np.dtype(dtype).name}"
    if not path.is_file():
        ids = np.asarray(tokenizer.encode(text), dtype=dtype)
        atomic_write(path, lambda tmp: ids.tofile(tmp))
    if path.stat().st_size == 0:
        return np.zeros(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r")


def describe_text_datasets(data_dir: str | None = None) -> list[dict]:
    """For `aigc data list`: each text corpus, where it is looked for, and whether it is there."""
    roots = data_roots(data_dir)
    shakespeare = find_file("shakespeare", SHAKESPEARE.filename, roots)
    gutenberg = any((root / "gutenberg").glob("*.txt") for root in roots)
    return [
        {
            "name": "shakespeare",
            "description": "tiny Shakespeare, 1,115,394 characters (nanoGPT's shakespeare_char); downloaded if missing",
            "present": shakespeare is not None,
            "missing": [] if shakespeare else [SHAKESPEARE.filename],
            "locations": [str(root / "shakespeare") for root in roots],
        },
        {
            "name": "gutenberg",
            "description": "public-domain books, one .txt per book (e.g. NLTK's Gutenberg selection)",
            "present": gutenberg,
            "missing": [] if gutenberg else ["*.txt"],
            "locations": [str(root / "gutenberg") for root in roots],
        },
        {
            "name": "python-docs",
            "description": "the Python documentation topics of this Python's pydoc_data (bundled; the default)",
            "present": True,
            "missing": [],
            "locations": ["(bundled)"],
        },
    ]


class TokenWindows:
    """The training examples of a language model: every window of `length` consecutive tokens of a token
    stream (a context's inputs and the token after each), indexed by where it starts."""

    def __init__(self, ids: torch.Tensor, length: int):
        if len(ids) <= length:
            raise UserError(
                f"the training text is {len(ids)} tokens, too short for windows of {length}; "
                "give more text or a shorter --context"
            )
        self.ids, self.length = ids, length
        self.offsets = torch.arange(length, device=ids.device)

    def __len__(self) -> int:
        return len(self.ids) - self.length + 1

    def __getitem__(self, starts: torch.Tensor) -> torch.Tensor:
        """int64 [N, length]: the windows starting at `starts` [N]."""
        return self.ids[starts.to(self.ids.device)[:, None] + self.offsets].long()

    def to(self, device: torch.device) -> TokenWindows:
        return TokenWindows(self.ids.to(device), self.length)
