"""The data set registry: every source yields uint8 images [N, C, H, W] (+ int64 labels [N]) held in memory.

Public names: `digits`, `mnist`, `fashion-mnist`, `cifar10` and `folder:PATH`.
"""

from __future__ import annotations

import gzip
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from aigc.core.config import Config
from aigc.core.errors import UserError
from aigc.data.download import Resource, data_roots, find_file, locate

Split = Literal["train", "test"]


@dataclass(frozen=True)
class DataConfig(Config):
    """Which images to train on and how they are served."""

    name: str = field(
        default="digits",
        metadata={"help": "digits | mnist | fashion-mnist | cifar10 | folder:PATH", "flag": "--data"},
    )
    data_dir: str | None = field(default=None, metadata={"help": "root holding the data set files"})
    image_size: int | None = field(default=None, metadata={"help": "side in pixels (default: the set's own)", "min": 1})
    channels: Literal[1, 3] | None = field(default=None, metadata={"help": "1 (grayscale) or 3 (RGB); folders only"})
    flip: bool = field(default=False, metadata={"help": "random horizontal flips while training"})
    skip_bad_images: bool = field(default=False, metadata={"help": "skip undecodable files in a folder"})


@dataclass(frozen=True)
class ImageDataset:
    """Images uint8 [N, C, H, W] in [0, 255]; labels int64 [N] in [0, num_classes) or None."""

    images: torch.Tensor
    labels: torch.Tensor | None
    class_names: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])


def load_dataset(config: DataConfig, split: Split = "train") -> ImageDataset:
    """Load a registered data set (or a folder) and serve it at `config.image_size`."""
    name = config.name
    if split not in ("train", "test"):
        raise UserError(f"unknown split {split!r}; choose train or test")
    if name.startswith("folder:"):
        return load_folder(Path(name.removeprefix("folder:")), config)
    if name not in DATASETS:
        raise UserError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)} or folder:PATH")
    if config.channels is not None:
        raise UserError(f"--channels applies to folder data sets only; {name} has its own channels")
    spec = DATASETS[name]
    dataset = spec.load(config, split)
    size = config.image_size or spec.native_size
    return ImageDataset(resize(dataset.images, size), dataset.labels, dataset.class_names)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Smoothly resize uint8 [N, C, h, w] to [N, C, size, size] (antialiased bicubic)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    if not 4 <= size <= 1024:
        raise UserError(f"--image-size {size} is out of range; use a size between 4 and 1024")
    chunks = [
        F.interpolate(chunk.float(), size=(size, size), mode="bicubic", antialias=True, align_corners=False)
        for chunk in images.split(4096)
    ]
    return torch.cat(chunks).round().clamp(0, 255).to(torch.uint8)


# --- digits: scikit-learn's bundled 8x8 handwritten digits ---------------------------------------------


def load_digits(config: DataConfig, split: Split) -> ImageDataset:
    from sklearn.datasets import load_digits as sklearn_digits

    if split != "train":
        raise UserError("digits has only a train split (1797 images)")
    bunch = sklearn_digits()
    pixels = torch.from_numpy(bunch.images * (255.0 / 16.0)).round().to(torch.uint8)  # values are 0..16
    labels = torch.from_numpy(bunch.target).long()
    return ImageDataset(pixels[:, None], labels, tuple(str(d) for d in range(10)))


# --- MNIST and Fashion-MNIST: the official IDX files --------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip or raw) of unsigned bytes into an array of the shape in its header."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:
        raise UserError(f"{path}: not a readable IDX file ({error}); replace it with the official file") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError(f"{path}: not an IDX file of unsigned bytes; replace it with the official file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise UserError(f"{path}: truncated IDX file (header says {shape}); replace it with the official file")
    return np.frombuffer(data, np.uint8, offset=offset).reshape(shape)


def idx_loader(dataset: str, resources: dict[Split, tuple[Resource, Resource]], class_names: tuple[str, ...]):
    def load(config: DataConfig, split: Split) -> ImageDataset:
        image_path, label_path = locate(dataset, resources[split], config.data_dir)
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UserError(f"{image_path}, {label_path}: image and label files do not match; use the official pair")
        if labels.size and labels.max() >= len(class_names):
            raise UserError(f"{label_path}: label {labels.max()} out of range; use the official file")
        return ImageDataset(
            torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64)), class_names
        )

    return load


MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)


def idx_resources(md5s: dict[str, str], mirrors: tuple[str, ...]) -> dict[Split, tuple[Resource, Resource]]:
    def pair(prefix: str) -> tuple[Resource, Resource]:
        names = (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz")
        return tuple(Resource(name, md5s[name], mirrors) for name in names)

    return {"train": pair("train"), "test": pair("t10k")}


MNIST_FILES = idx_resources(
    {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    MNIST_MIRRORS,
)
FASHION_MNIST_FILES = idx_resources(
    {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    FASHION_MIRRORS,
)
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Boot",
)

# --- CIFAR-10: the official binary archive -------------------------------------------------------------

CIFAR10_ARCHIVE = Resource(
    "cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", ("https://www.cs.toronto.edu/~kriz/",)
)
CIFAR10_BATCHES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_RECORD = 1 + 3 * 32 * 32  # one label byte, then the 32x32 R, G and B planes


def load_cifar10(config: DataConfig, split: Split) -> ImageDataset:
    (archive,) = locate("cifar10", (CIFAR10_ARCHIVE,), config.data_dir)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            blobs = []
            for name in CIFAR10_BATCHES[split]:
                if name not in members:
                    raise UserError(f"{archive}: {name} missing; replace it with the official archive")
                blobs.append(tar.extractfile(members[name]).read())
    except (tarfile.TarError, OSError, EOFError) as error:
        raise UserError(f"{archive}: unreadable archive ({error}); replace it with the official file") from None
    data = np.frombuffer(b"".join(blobs), np.uint8)
    if data.size % CIFAR10_RECORD:
        raise UserError(f"{archive}: a batch file is truncated; replace it with the official archive")
    records = data.reshape(-1, CIFAR10_RECORD)
    images = torch.from_numpy(records[:, 1:].reshape(-1, 3, 32, 32).copy())
    labels = torch.from_numpy(records[:, 0].astype(np.int64))
    return ImageDataset(images, labels, CIFAR10_CLASSES)


# --- folder:PATH: any directory of images -------------------------------------------------------------

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def load_folder(root: Path, config: DataConfig) -> ImageDataset:
    """All images under `root`, recursively; classes from first-level sub-folders when every image has one."""
    if not root.is_dir():
        raise UserError(f"folder {root} does not exist; pass --data folder:PATH with a directory of images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"folder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    pixels, kept = decode_images(files, config.image_size or 64, config.channels or 3, config.skip_bad_images)
    relative = [p.relative_to(root).parts for p in kept]
    if all(len(parts) >= 2 for parts in relative):
        class_names = tuple(sorted({parts[0] for parts in relative}))
        index = {name: k for k, name in enumerate(class_names)}
        labels = torch.tensor([index[parts[0]] for parts in relative], dtype=torch.long)
        return ImageDataset(pixels, labels, class_names)
    return ImageDataset(pixels, None)


def decode_images(files: list[Path], size: int, channels: int, skip_bad: bool) -> tuple[torch.Tensor, list[Path]]:
    """(uint8 [N, channels, size, size], the files decoded): each resized and center-cropped; an undecodable file
    is a UserError, or skipped (with one line to stderr) when `skip_bad`."""
    if channels not in (1, 3):
        raise UserError(f"--channels {channels}: use 1 (grayscale) or 3 (RGB)")
    images, kept, bad = [], [], []
    for path in files:
        try:
            images.append(_decode(path, size, channels))
            kept.append(path)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
            if not skip_bad:
                raise UserError(f"cannot decode image {path} ({error}); delete it or pass --skip-bad-images") from None
            bad.append(path)
    if bad:
        print(f"skipped {len(bad)} undecodable image(s), e.g. {bad[0]}", file=sys.stderr)
    if not images:
        raise UserError(f"no image could be decoded, e.g. {files[0]}")
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), kept


def _decode(path: Path, size: int, channels: int) -> np.ndarray:
    """One file -> uint8 [size, size, channels]: short side resized to `size`, then center-cropped."""
    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        scale = size / min(image.size)
        width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
        image = image.resize((width, height), Image.BICUBIC, reducing_gap=3.0)
        left, top = (width - size) // 2, (height - size) // 2
        image = image.crop((left, top, left + size, top + size))
        return np.asarray(image, np.uint8).reshape(size, size, channels)


# --- the registry -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    load: Callable[[DataConfig, Split], ImageDataset]
    native_size: int
    files: tuple[str, ...]  # what `aigc data list` looks for; empty when bundled with a package
    description: str


DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(load_digits, 16, (), "scikit-learn's 8x8 digits, 1797 images, 10 classes (bundled)"),
    "mnist": DatasetSpec(
        idx_loader("mnist", MNIST_FILES, tuple(str(d) for d in range(10))),
        28,
        tuple(r.filename for pair in MNIST_FILES.values() for r in pair),
        "MNIST handwritten digits, 28x28, 60k train + 10k test",
    ),
    "fashion-mnist": DatasetSpec(
        idx_loader("fashion-mnist", FASHION_MNIST_FILES, FASHION_CLASSES),
        28,
        tuple(r.filename for pair in FASHION_MNIST_FILES.values() for r in pair),
        "Zalando Fashion-MNIST, 28x28, 60k train + 10k test",
    ),
    "cifar10": DatasetSpec(
        load_cifar10,
        32,
        (CIFAR10_ARCHIVE.filename,),
        "CIFAR-10 (binary archive), 32x32 RGB, 50k train + 10k test",
    ),
}


def describe_datasets(data_dir: str | None = None) -> list[dict]:
    """For `aigc data list`: each data set, where it is looked for, and whether its files are present."""
    roots = data_roots(data_dir)
    rows = []
    for name, spec in DATASETS.items():
        found = {f: find_file(name, f, roots) for f in spec.files}
        rows.append(
            {
                "name": name,
                "description": spec.description,
                "present": all(found.values()),
                "missing": [f for f, path in found.items() if path is None],
                "locations": [str(root / name) for root in roots] if spec.files else ["(bundled)"],
            }
        )
    return rows
