"""Perturbed copies of texts, to measure how much a classifier's accuracy rests on surface form (the robustness
question of the tutorial's sentiment scene): character typos in a share of the words, changed letter case, and
numbers replaced by others of the same shape. Each copy is a pure function of the text, its index and the seed,
so every model is scored on the same perturbed texts."""

from __future__ import annotations

import random
import re
import string

WORD = re.compile(r"[^\W\d_]{2,}")  # a run of two letters or more
NUMBER = re.compile(r"\d")


def typos(text: str, share: float, rng: random.Random) -> str:
    """`share` of the words (of two letters or more) with one edit each: two neighbours swapped, a letter
    dropped, a letter added or a letter replaced (the four kinds of typing slip; Pruthi et al. 2019)."""

    def slip(match: re.Match) -> str:
        word = match.group()
        if rng.random() >= share:
            return word
        at, kind = rng.randrange(len(word) - 1), rng.randrange(4)
        letter = rng.choice(string.ascii_lowercase)
        if kind == 0:
            return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
        if kind == 1:
            return word[:at] + word[at + 1 :]
        if kind == 2:
            return word[:at] + letter + word[at:]
        return word[:at] + letter + word[at + 1 :]

    return WORD.sub(slip, text)


def case(text: str, rng: random.Random) -> str:
    """Every word in lower case, upper case or title case, drawn at random."""
    return WORD.sub(lambda m: rng.choice((str.lower, str.upper, str.title))(m.group()), text)


def numbers(text: str, rng: random.Random) -> str:
    """Every digit replaced by a random one (a number keeps its length, separators and sign)."""
    return NUMBER.sub(lambda m: str(rng.randrange(10)), text)


PERTURBATIONS = {
    "typos-5": lambda text, rng: typos(text, 0.05, rng),
    "typos-10": lambda text, rng: typos(text, 0.10, rng),
    "case": case,
    "numbers": numbers,
}


def perturbed(texts: list[str], name: str, seed: int = 0) -> list[str]:
    """The texts as perturbation `name` changes them, text i with its own random stream (seed, i)."""
    change = PERTURBATIONS[name]
    return [change(text, random.Random(f"{seed}:{name}:{i}")) for i, text in enumerate(texts)]
