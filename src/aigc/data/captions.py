"""Captioned images, the training data of text-to-image: `scenes:SOURCE` (compositional scenes painted from
digits, mnist or fashion-mnist, data/scenes.py) or `captions:PATH`, a folder of images with their captions - a
`metadata.jsonl` of {"file_name": ..., "text": ...} lines (the layout of diffusers' train_text_to_image.py and
the Hugging Face image-folder loader), or a same-named `.txt` beside each image (one caption per line). An
image may have several captions (several lines, or "text" a list)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from aigc.core.config import Config
from aigc.core.errors import UserError
from aigc.data.datasets import IMAGE_SUFFIXES, DataConfig, decode_images, load_dataset
from aigc.data.scenes import SOURCES, Scene, SceneLayout, make_scenes
from aigc.data.tokenizer import TextTokenizer


@dataclass(frozen=True)
class CaptionDataConfig(Config):
    """Which captioned images to train on."""

    name: str = field(
        default="scenes:digits",
        metadata={"help": "scenes:digits | scenes:mnist | scenes:fashion-mnist | captions:PATH", "flag": "--data"},
    )
    data_dir: str | None = field(default=None, metadata={"help": "root holding the source data set's files"})
    image_size: int | None = field(
        default=None, metadata={"help": "side in pixels (default: scenes 48, folders 64)", "min": 24}
    )
    channels: int | None = field(default=None, metadata={"help": "1 or 3 (default 3); caption folders only"})
    scenes: int = field(default=20_000, metadata={"help": "training scenes to paint (scenes: only)", "min": 1})
    min_objects: int = field(default=1, metadata={"help": "fewest objects in a scene", "min": 1})
    max_objects: int = field(default=3, metadata={"help": "most objects in a scene", "min": 1})
    skip_bad_images: bool = field(default=False, metadata={"help": "skip undecodable files in a folder"})
    wording: Literal["words", "list"] = field(
        default="words",
        metadata={
            "help": "scenes: captions in words, or a fixed-order class list per place ('- 7/l - ...': the "
            "baseline without language)",
            "flag": "--captions",
        },
    )


def scene_splits(config: CaptionDataConfig) -> tuple[str, ...]:
    """The splits a scene set has besides its training split: held-out combinations need two objects."""
    return ("test", "heldout") if config.max_objects >= 2 else ("test",)


@dataclass(frozen=True)
class CaptionedImages:
    """Images uint8 [N, C, H, W] with one or more captions each; scenes also say what each image holds."""

    images: torch.Tensor
    captions: list[tuple[str, ...]]
    scenes: tuple[Scene, ...] | None = None


def load_captioned(config: CaptionDataConfig, split: str = "train", count: int | None = None) -> CaptionedImages:
    """The captioned images of `split` (scenes: train, test or heldout; a folder has only its own)."""
    kind, _, where = config.name.partition(":")
    if kind == "scenes":
        return load_scenes(config, where, split, count or config.scenes)
    if kind == "captions":
        if split != "train":
            raise UserError(f"a caption folder has no {split} split; its images are all training images")
        return load_caption_folder(Path(where), config)
    raise UserError(f"unknown captioned data {config.name!r}; use scenes:digits|mnist|fashion-mnist or captions:PATH")


def held_out_images(data: CaptionDataConfig, n: int) -> tuple[torch.Tensor, str]:
    """(up to n images [n, C, H, W] uint8, their split) no model trained on: the scenes' test split; a caption
    folder has none, so its own images."""
    split = "test" if data.name.startswith("scenes:") else "train"
    images = load_captioned(data, split, n).images
    if len(images) < 2:
        raise UserError(f"{data.name}: {len(images)} images to judge a model on; give at least 2")
    return images[:n], split


def load_scenes(config: CaptionDataConfig, source: str, split: str, count: int) -> CaptionedImages:
    if source not in SOURCES:
        raise UserError(f"scenes:{source}: scenes are painted from {', '.join(SOURCES)}")
    if config.channels is not None:
        raise UserError("--channels applies to caption folders; scenes are grayscale")
    # test and held-out scenes are painted from the source's test images when it has them
    has_test = source != "digits"
    source_split = "test" if split != "train" and has_test else "train"
    images = load_dataset(DataConfig(name=source, data_dir=config.data_dir), source_split)
    layout = SceneLayout(config.image_size or 48, config.min_objects, config.max_objects)
    scenes = make_scenes(images.images, images.labels, source, split, count, layout)
    return CaptionedImages(scenes.images, scenes.captions(config.wording), scenes.scenes)


def load_caption_folder(root: Path, config: CaptionDataConfig) -> CaptionedImages:
    if config.wording != "words":
        raise UserError(f"--captions {config.wording} applies to scenes; a folder's captions are its own")
    if not root.is_dir():
        raise UserError(f"folder {root} does not exist; pass --data captions:PATH with a folder of images")
    captions = read_metadata(root) if (root / "metadata.jsonl").is_file() else read_sidecars(root)
    if not captions:
        raise UserError(f"{root} holds no captioned images: add metadata.jsonl or a .txt beside each image")
    files = sorted(captions)
    images, kept = decode_images(files, config.image_size or 64, config.channels or 3, config.skip_bad_images)
    return CaptionedImages(images, [captions[path] for path in kept])


def read_metadata(root: Path) -> dict[Path, tuple[str, ...]]:
    """{image path: its captions} from metadata.jsonl; UserError naming the first bad line."""
    captions: dict[Path, list[str]] = {}
    for number, line in enumerate((root / "metadata.jsonl").read_text().splitlines(), 1):
        if not line.strip():
            continue
        where = f"{root / 'metadata.jsonl'} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{where}: not JSON ({error.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("file_name"), str):
            raise UserError(f'{where}: expected {{"file_name": ..., "text": ...}}')
        texts = row.get("text")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise UserError(f'{where}: "text" must be a non-empty caption or a list of them')
        path = root / row["file_name"]
        if not path.is_file():
            raise UserError(f"{where}: no image {path}")
        captions.setdefault(path, []).extend(t.strip() for t in texts)
    return {path: tuple(texts) for path, texts in captions.items()}


def read_sidecars(root: Path) -> dict[Path, tuple[str, ...]]:
    """{image path: the lines of the .txt beside it}; an image without one is an error naming it."""
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    captions = {}
    for path in images:
        sidecar = path.with_suffix(".txt")
        if not sidecar.is_file():
            raise UserError(f"{path} has no caption: write {sidecar.name} beside it (or a metadata.jsonl)")
        lines = tuple(line.strip() for line in sidecar.read_text().splitlines() if line.strip())
        if not lines:
            raise UserError(f"{sidecar} is empty; write the image's caption in it")
        captions[path] = lines
    return captions


def normalized(text: str) -> str:
    """Captions and prompts are read lower-cased with single spaces (as CLIP's tokenizer reads them)."""
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class PromptReader:
    """How a text-to-image model reads a prompt: its tokenizer (fitted to the training captions), the most tokens
    its text encoder takes, and the characters the captions had (a prompt may use no other: the text encoder
    never learnt what they mean; None for a pretrained encoder, which reads any)."""

    tokenizer: TextTokenizer
    max_tokens: int
    alphabet: str | None

    @classmethod
    def fit(cls, kind: str, captions: list[tuple[str, ...]], vocab_size: int, max_tokens: int) -> PromptReader:
        corpus = "\n".join(normalized(c) for row in captions for c in row)
        alphabet = "".join(sorted(set(corpus) - {"\n"}))
        return cls(TextTokenizer.train(kind, corpus, vocab_size), max_tokens, alphabet)

    def tokens(self, prompt: str, what: str = "the prompt") -> list[int]:
        """The tokenizer's ids of a prompt (normalized); UserError for a character no caption had or more tokens
        than the text encoder reads."""
        text = normalized(prompt)
        if not text:
            raise UserError(f"{what} is empty; say what to draw, e.g. 'a large 5 at the top right'")
        unknown = sorted(set(text) - set(self.alphabet)) if self.alphabet is not None else []
        if unknown:
            shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unknown[:5])
            raise UserError(f"character {shown} is in no training caption; the text encoder cannot read it")
        tokens = self.tokenizer.encode(text)
        if len(tokens) > self.max_tokens:
            raise UserError(
                f"{what} is {len(tokens)} tokens; the text encoder reads at most {self.max_tokens}: {prompt[:40]!r}..."
            )
        return tokens
