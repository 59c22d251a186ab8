import dataclasses
import gzip
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.training.test_checkpoint import TINY

from aigc.data.datasets import DataConfig
from aigc.data.labelled import LabelledDataConfig
from aigc.data.ratings import RatingsConfig
from aigc.data.text import TextDataConfig
from aigc.families.classifier.config import TRAIN as CLASSIFIER_TRAIN
from aigc.families.classifier.config import ClassifierRunConfig
from aigc.families.gan.config import gan_recipe
from aigc.families.lm.config import TRAIN as LM_TRAIN
from aigc.families.lm.config import LMRunConfig, LMSampleConfig
from aigc.families.recommender.config import TRAIN as RECOMMENDER_TRAIN
from aigc.families.recommender.config import ItemsConfig, RecommenderRunConfig
from aigc.models.transformer import TransformerConfig
from aigc.runs import train

torch.set_num_threads(2)


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """An IDX file of unsigned bytes, as the MNIST files are laid out."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    """A data root holding an MNIST look-alike of 40 train and 20 test images, official file names."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for prefix, n in (("train", 40), ("t10k", 20)):
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return root


@pytest.fixture(scope="session")
def diffusion_run(tmp_path_factory):
    """A class-conditional 8x8 digits diffusion run (10 classes), a few steps old."""
    run_dir = tmp_path_factory.mktemp("served") / "digits"
    train(TINY, run_dir, progress=False)
    return run_dir


def tiny_gan(recipe: str):
    base = gan_recipe(recipe)
    return dataclasses.replace(
        base,
        data=DataConfig(name="digits", image_size=8),
        model=dataclasses.replace(base.model, width=8 if recipe == "stable" else base.model.width, z_dim=8),
        train=dataclasses.replace(base.train, batch=16, budget=64, snapshot_every=32, grid_size=4),
    )


@pytest.fixture(scope="session")
def gan_run(tmp_path_factory):
    """An unconditional 8x8 digits GAN run of the stable recipe (DCGAN networks), a few steps old."""
    run_dir = tmp_path_factory.mktemp("served") / "gan"
    train(tiny_gan("stable"), run_dir, progress=False)
    return run_dir


@pytest.fixture(scope="session")
def mlp_gan_run(tmp_path_factory):
    """An 8x8 digits GAN run of the seed recipe (the tutorial's MLPs: all Linear layers), a few steps old."""
    run_dir = tmp_path_factory.mktemp("served") / "mlp"
    train(tiny_gan("seed"), run_dir, progress=False)
    return run_dir


CHROMIUM = os.environ.get("AIGC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# Without its background services Chromium stays off the network, which this machine's sandbox refuses anyway.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests leave files for people to look at (screenshots): test-artifacts/ or $AIGC_TEST_ARTIFACTS."""
    directory = Path(os.environ.get("AIGC_TEST_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (the system's, driven by Playwright), or a skip where there is none."""
    if not CHROMIUM:
        if os.environ.get("AIGC_REQUIRE_BROWSER"):
            pytest.fail("no chromium on PATH; .ci/run installs Debian's chromium package")
        pytest.skip("no chromium on PATH (apt-get install chromium, or set AIGC_CHROMIUM)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def write_lm_text(path: Path) -> Path:
    """A small text with some structure to learn (20 kB, 38 characters)."""
    animals = ["fox", "dog", "cat", "owl", "hen", "elk", "yak"]
    lines = [
        f"line {i}: the {animals[i % 7]} jumps over the {animals[(3 * i) % 7]}, {i % 13} times.\n" for i in range(300)
    ]
    path.write_text("".join(lines))
    return path


def tiny_lm(text: Path, **train) -> LMRunConfig:
    """A 2-layer, 32-wide character model with a context of 32, trained for 8 steps of 8 windows."""
    return LMRunConfig(
        data=TextDataConfig(name=f"text:{text}"),
        model=TransformerConfig(width=32, layers=2, heads=2, context=32),
        train=dataclasses.replace(
            LM_TRAIN, batch=8, budget=8 * 32 * 8, snapshot_every=8 * 32 * 4, warmup=512, grid_size=2, **train
        ),
        sample=LMSampleConfig(max_tokens=24),
    )


@pytest.fixture(scope="session")
def lm_run(tmp_path_factory):
    """A character language model run on a small text, a few steps old."""
    root = tmp_path_factory.mktemp("served")
    run_dir = root / "lm"
    train(tiny_lm(write_lm_text(root / "text.txt")), run_dir, progress=False)
    return run_dir


def write_chat(path: Path, rows: int = 40) -> Path:
    """Conversations (a few prompt-completion pairs among them) in the alphabet of `write_lm_text`'s text."""
    lines = []
    for i in range(rows):
        if i % 4 == 3:
            lines.append({"prompt": f"line {i}: the owl", "completion": f" jumps over the cat, {i % 5} times."})
        else:
            messages = [
                {"role": "user", "content": f"line {i}"},
                {"role": "assistant", "content": f"the cat jumps {i % 5} times."},
            ]
            lines.append({"messages": messages})
    path.write_text("\n".join(json.dumps(row) for row in lines) + "\n")
    return path


@pytest.fixture(scope="session")
def chat_run(tmp_path_factory):
    """A character model trained from scratch on conversations (ChatML markers added), a few steps old."""
    root = tmp_path_factory.mktemp("served")
    config = tiny_lm(write_chat(root / "chat.jsonl"))
    config = dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, name=f"chat:{root / 'chat.jsonl'}"),
        model=dataclasses.replace(config.model, context=64),
        train=dataclasses.replace(config.train, budget=64 * 8 * 12, snapshot_every=64 * 8 * 12, lr=1e-2),
    )
    train(config, root / "chat", progress=False)
    return root / "chat"


# a text-to-image run on 32-pixel digit scenes in seconds: 2 steps of the autoencoder, then 4 of the denoiser
TINY_TEXT2IMAGE = ["--scenes", "48", "--image-size", "32", "--preset", "tiny", "--autoencoder-channels", "8",
                   "--text-width", "32", "--text-layers", "1", "--text-heads", "2", "--batch", "16",
                   "--warmup-kimg", "0.01", "--steps", "2", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="session")
def text2image_run(tmp_path_factory):
    from aigc.cli import main as aigc

    out = tmp_path_factory.mktemp("t2i") / "run"
    budget = ["--kimg", "0.096", "--autoencoder-kimg", "0.032", "--snapshot-kimg", "0.032"]
    assert aigc(["train", "text2image", *TINY_TEXT2IMAGE, *budget, "--out", str(out)]) == 0
    return out


ANIMALS = ["fox", "dog", "cat", "owl", "hen", "elk", "yak"]


def write_reviews(path, rows=120):
    """Texts in the alphabet of `write_lm_text`'s text whose label is the word in them: good or bad."""
    lines = ["text,label"]
    for i in range(rows):
        verdict = ("good", "bad")[i % 2]
        lines.append(
            f'"line {i}: the {ANIMALS[i % 7]} jumps, {verdict} {ANIMALS[(3 * i) % 7]} {i % 13} times.",{verdict}'
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def tiny_classifier(data, init="none", **finetune) -> ClassifierRunConfig:
    """A 1-layer, 32-wide classifier of `write_reviews`'s texts, 60 steps of 16 (random weights by default)."""
    config = ClassifierRunConfig(
        data=LabelledDataConfig(name=f"csv:{data}"),
        model=TransformerConfig(width=32, layers=1, heads=2, context=64),
        train=dataclasses.replace(
            CLASSIFIER_TRAIN, batch=16, budget=16 * 60, lr=3e-3, warmup=64, eval_every=16 * 25, snapshot_every=16 * 60
        ),
    )
    return dataclasses.replace(config, finetune=dataclasses.replace(config.finetune, init=init, **finetune))


@pytest.fixture(scope="session")
def classifier_run(tmp_path_factory):
    """A classifier of good and bad reviews that has learnt them, calibrated on validation."""
    root = tmp_path_factory.mktemp("classifier")
    train(tiny_classifier(write_reviews(root / "reviews.csv")), root / "run", progress=False)
    return root / "run"


def write_bitext(root, rows=60):
    """A Bitext-format file: the real header, multi-line quoted replies with {{placeholders}}, three intents."""
    import csv

    folder = root / "customer-support"
    folder.mkdir(parents=True)
    header = "flags,instruction,category,intent,response".split(",")
    intents = ["cancel_order", "track_order", "get_refund"]
    with open(folder / "Bitext_Sample_Customer_Support_Training_Dataset.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i in range(rows):
            reply = f'Sure.\n\n1. Open {{{{Order History}}}}.\n2. Choose order {i}, "quoted".'
            writer.writerow(
                ["B", f"how do I {intents[i % 3].replace('_', ' ')} no. {i}", "ORDER", intents[i % 3], reply]
            )
    return folder


TINY_CLASSIFIER = ["--texts", "200", "--width", "32", "--layers", "1", "--heads", "2", "--context", "32",
                   "--no-progress"]  # fmt: skip


@pytest.fixture(scope="session")
def assistant_parts(tmp_path_factory):
    """A Bitext-format file (90 rows), its index, a generator trained on `aigc assistant data` of it (characters,
    byte-level BPE, context 256) and an intent classifier, each in its directory under the returned one."""
    from aigc.cli import main as aigc

    root = tmp_path_factory.mktemp("assistant")
    write_bitext(root / "data", rows=90)
    data = ["--data-dir", str(root / "data")]
    lm = ["--tokens", "6k", "--width", "32", "--layers", "1", "--heads", "2", "--context", "256", "--batch", "4",
          "--tokenizer", "bpe", "--vocab-size", "320",
          "--no-progress"]  # fmt: skip
    assert aigc(["index", "build", "--data", "bitext", *data, "--out", str(root / "index")]) == 0
    assert aigc(["assistant", "data", str(root / "index"), "--out", str(root / "chat.jsonl")]) == 0
    assert aigc(["train", "lm", "--data", f"chat:{root / 'chat.jsonl'}", *lm, "--out", str(root / "gen")]) == 0
    assert (
        aigc(["train", "classifier", "--data", "bitext", *data, *TINY_CLASSIFIER, "--out", str(root / "intents")]) == 0
    )
    return root


GENRES = ("Action", "Comedy", "Drama")


def write_movielens(root: Path, users: int = 24) -> Path:
    """A folder in MovieLens's form: 30 movies, ten of each genre; user u likes (4 or 5 stars) eight movies of
    genre u % 3 in order - movie i then i + 1, from a start of its own - and rates two of another genre 2 stars.
    Two movies share the title "Twin" (1990 and 2000); some movies have tags."""
    root.mkdir(parents=True, exist_ok=True)
    movies = ["movieId,title,genres"]
    for i in range(30):
        genre = GENRES[i // 10]
        title = f"Twin ({1990 + 10 * (i % 2)})" if i in (28, 29) else f"{genre} Film {i} ({2000 + i})"
        movies.append(f'{100 + i},"{title}",{genre}|Film')
    ratings, time = ["userId,movieId,rating,timestamp"], 1_000_000
    for user in range(1, users + 1):
        genre = user % 3
        for step in range(8):
            time += 60
            movie = 100 + 10 * genre + (user + step) % 10
            ratings.append(f"{user},{movie},{4.0 + step % 2},{time}")
        for other in range(2):
            time += 60
            ratings.append(f"{user},{100 + 10 * ((genre + 1) % 3) + other},2.0,{time}")
    tags = ["userId,movieId,tag,timestamp", "1,100,explosions,1", "2,100,Explosions,2", "3,100,car chase,3"]
    tags += ["4,110,funny,4", "5,120,slow,5"]
    for name, lines in (("movies.csv", movies), ("ratings.csv", ratings), ("tags.csv", tags)):
        (root / name).write_text("\n".join(lines) + "\n")
    return root


def tiny_recommender(folder: Path, text_model: str = "", **items) -> RecommenderRunConfig:
    """A 1-layer, 16-wide recommender of `write_movielens`'s likes, 40 steps of 8 histories."""
    return RecommenderRunConfig(
        data=RatingsConfig(name=f"movielens:{folder}"),
        model=TransformerConfig(width=16, layers=1, heads=2, context=8, dropout=0.0),
        items=ItemsConfig(text_model=text_model, **items),
        train=dataclasses.replace(
            RECOMMENDER_TRAIN, batch=8, budget=8 * 40, lr=1e-2, warmup=16, eval_every=8 * 20, snapshot_every=8 * 40
        ),
    )


@pytest.fixture(scope="session")
def recommender_run(tmp_path_factory, lm_run):
    """A recommender of the tiny MovieLens folder with item ids and the text vectors of `lm_run`."""
    root = tmp_path_factory.mktemp("recommender")
    train(tiny_recommender(write_movielens(root / "movielens"), str(lm_run)), root / "run", progress=False)
    return root / "run"
