"""Tokenizers for text: character-level, or byte-level BPE trained with the Hugging Face `tokenizers` library.

Both are held as a `tokenizers.Tokenizer` and saved as its `tokenizer.json` (no pickle), so a run's tokenizer
loads in transformers as it is: the character tokenizer is a WordLevel model over single characters (a regex
pre-tokenizer isolates each one, the Fuse decoder joins them back), BPE the byte-level model GPT-2 uses, which
never meets an unknown character.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from aigc.core.errors import UserError
from aigc.core.io import atomic_write_text

TokenizerKind = Literal["char", "bpe"]
MIN_BPE_VOCAB = 256  # the byte alphabet


class TextTokenizer:
    """text <-> token ids [0, vocab_size)."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.kind: TokenizerKind = "char" if json.loads(tokenizer.to_str())["model"]["type"] == "WordLevel" else "bpe"
        self.alphabet = frozenset(tokenizer.get_vocab()) if self.kind == "char" else None
        # markers such as a chat template's <|im_end|>: one token each, matched before the model's own tokens
        self.special = tuple(t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special)

    @classmethod
    def train(cls, kind: TokenizerKind, text: str, vocab_size: int = 512) -> TextTokenizer:
        """A tokenizer fitted to `text`: its characters, or `vocab_size` byte-level BPE tokens."""
        if not text:
            raise UserError("the training text is empty; give a corpus with some text in it")
        if kind == "char":
            vocabulary = {c: i for i, c in enumerate(sorted(set(text)))}
            tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token=None))
            tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
            tokenizer.decoder = decoders.Fuse()
            return cls(tokenizer)
        if vocab_size < MIN_BPE_VOCAB:
            raise UserError(f"--vocab-size {vocab_size}: byte-level BPE needs at least {MIN_BPE_VOCAB} tokens")
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, show_progress=False)
        tokenizer.train_from_iterator([text], trainer)
        return cls(tokenizer)

    @classmethod
    def load(cls, path: str | Path) -> TextTokenizer:
        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as error:  # the library raises plain Exceptions for missing and malformed files
            raise UserError(f"{path}: not a readable tokenizer.json ({error})") from None

    @classmethod
    def from_str(cls, text: str, where: str = "the run config") -> TextTokenizer:
        try:
            return cls(Tokenizer.from_str(text))
        except Exception as error:  # as in `load`
            raise UserError(f"{where}: the tokenizer is unreadable ({error})") from None

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.tokenizer.to_str())

    def to_str(self) -> str:
        return self.tokenizer.to_str()

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def with_special_tokens(self, tokens: list[str]) -> TextTokenizer:
        """A copy with `tokens` added as special tokens (ids after the present ones; those it has are kept)."""
        copy = Tokenizer.from_str(self.tokenizer.to_str())
        copy.add_special_tokens(tokens)
        return TextTokenizer(copy)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; UserError naming a character the character tokenizer has never seen."""
        return self.encode_with_offsets(text)[0]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """(token ids, each token's (start, end) characters in `text`)."""
        if self.alphabet is not None:
            plain = text
            for marker in self.special:
                plain = plain.replace(marker, "")
            unknown = sorted(set(plain) - self.alphabet)
            if unknown:
                shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unknown[:5])
                raise UserError(f"character {shown} is not in this model's vocabulary; remove it from the text")
        encoding = self.tokenizer.encode(text)
        return encoding.ids, encoding.offsets

    def encode_all(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, in one call; a character the character tokenizer has never seen is left out
        (a text to label is labelled, not refused, for one symbol)."""
        if self.alphabet is not None:
            texts = ["".join(c for c in text if c in self.alphabet) for text in texts]
        return [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)
