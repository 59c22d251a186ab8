"""Train the feature extractor of a built-in data set, reproducibly, and write it into the package.

    python -m aigc.evaluation.train_extractor --data mnist --data-dir ../shared/data
    python -m aigc.evaluation.train_extractor --data mnist --data-dir ../shared/data --architecture resnet

Fixed seed, fixed epochs, single-threaded determinism aside: the printed sha256 and test accuracy are what
ships. An extractor is a classifier; its penultimate layer is the feature space of FID & co. The two builds
are trained differently on purpose (features.py): `cnn` with Adam, one shift per batch, seed 0; `resnet` with
AdamW and weight decay, a shift and a cutout per image, label smoothing, seed 1.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from aigc.core.io import atomic_write, file_digest
from aigc.data.augment import cutout, translation
from aigc.data.datasets import DataConfig, ImageDataset, load_dataset
from aigc.evaluation.features import ARCHITECTURES, EXTRACTOR_SIZES, EXTRACTOR_VERSION, prepare, weights_path

# epochs per architecture and data set, and the test accuracy the shipped weights must reach
RECIPES = {
    "cnn": {"digits": (30, 0.95), "mnist": (3, 0.99), "fashion-mnist": (6, 0.90)},
    "resnet": {"digits": (40, 0.95), "mnist": (2, 0.99), "fashion-mnist": (4, 0.88)},
}
SEEDS = {"cnn": 0, "resnet": 1}
DIGITS_HELD_OUT = 297  # digits has no official test split: a fixed random 297 of its 1797 images


def splits(data: str, data_dir: str | None) -> tuple[ImageDataset, ImageDataset]:
    config = DataConfig(name=data, data_dir=data_dir, image_size=EXTRACTOR_SIZES[data])
    if data != "digits":
        return load_dataset(config, "train"), load_dataset(config, "test")
    everything = load_dataset(config, "train")
    order = torch.randperm(len(everything.images), generator=torch.Generator().manual_seed(0))
    test, train = order[:DIGITS_HELD_OUT], order[DIGITS_HELD_OUT:]
    return (
        ImageDataset(everything.images[train], everything.labels[train], everything.class_names),
        ImageDataset(everything.images[test], everything.labels[test], everything.class_names),
    )


@torch.no_grad()
def accuracy(net: torch.nn.Module, data: ImageDataset, size: int) -> float:
    net.eval()
    correct = 0
    for images, labels in zip(data.images.split(1000), data.labels.split(1000), strict=True):
        correct += int((net(prepare(images, size, 1))[1].argmax(1) == labels).sum())
    return correct / len(data.labels)


def augmented(x: torch.Tensor, architecture: str, generator: torch.Generator) -> torch.Tensor:
    """cnn: the whole batch rolled by up to 2 pixels; resnet: each image shifted by up to 1/8 of its side, then
    a square of a quarter of its side cut out."""
    if architecture == "cnn":
        shift = torch.randint(-2, 3, (2,), generator=generator).tolist()  # small translations generalise
        return torch.roll(x, shifts=shift, dims=(2, 3))
    return cutout(translation(x + 1, generator), generator, ratio=0.25) - 1  # fills are black


def make_optimizer(net: torch.nn.Module, architecture: str):
    if architecture == "cnn":
        return torch.optim.Adam(net.parameters(), lr=1e-3)
    return torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.05)


def train_extractor(
    data: str, data_dir: str | None, architecture: str = "cnn", epochs: int | None = None, out: Path | None = None
) -> dict:
    """Train the extractor of `architecture` on `data` by its recipe and write it into the package (with the
    Gaussian statistics of the reference split), or to `out` (nothing else written; `epochs` other than the
    recipe's: a check of the script, not the shipped weights)."""
    batch = 128
    recipe_epochs, required = RECIPES[architecture][data]
    epochs = epochs or recipe_epochs
    seed, smoothing = SEEDS[architecture], 0.0 if architecture == "cnn" else 0.1
    size = EXTRACTOR_SIZES[data]
    train, test = splits(data, data_dir)
    torch.manual_seed(seed)
    net = ARCHITECTURES[architecture](1, train.num_classes)
    optimizer = make_optimizer(net, architecture)
    steps_per_epoch = len(train.images) // batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    inputs = prepare(train.images, size, 1)
    started = time.time()
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(inputs), generator=generator)
        for step in range(steps_per_epoch):
            index = order[step * batch : (step + 1) * batch]
            x = augmented(inputs[index], architecture, generator)
            loss = F.cross_entropy(net(x)[1], train.labels[index], label_smoothing=smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        print(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.4f}, test accuracy {accuracy(net, test, size):.4f}")
    test_accuracy = accuracy(net, test, size)
    if test_accuracy < required and out is None:
        raise SystemExit(f"test accuracy {test_accuracy:.4f} is below the required {required}; weights not written")
    with torch.no_grad():
        net.eval()
        features = torch.cat([net(x)[0] for x in inputs.split(1000)])
    meta = {
        "data": data,
        "feature_scale": float(1 / features.double().square().mean().sqrt()),
        "version": EXTRACTOR_VERSION,
        "architecture": architecture,
        "image_size": size,
        "channels": 1,
        "num_classes": train.num_classes,
        "test_accuracy": round(test_accuracy, 4),
        "seed": seed,
        "epochs": epochs,
        "train_images": len(train.images),
    }
    if architecture == "cnn":  # the first build's files carry their wall time, so only their weights reproduce
        meta["train_seconds"] = round(time.time() - started)
    path = out or weights_path(data, architecture)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"extractor": json.dumps(meta)}))
    report = {**meta, "train_seconds": round(time.time() - started), "path": str(path), "sha256": file_digest(path)}
    if out is None:
        report["reference_stats"] = ship_reference_stats(data, data_dir, architecture)
    return report


def ship_reference_stats(data: str, data_dir: str | None, architecture: str) -> str:
    """Store the Gaussian fit of the default reference split in the package, so FID works without the data."""
    from aigc.evaluation.evaluate import EvalConfig, reference_features, reference_split, shipped_stats_path
    from aigc.evaluation.features import load_extractor
    from aigc.evaluation.metrics import gaussian_stats

    extractor = load_extractor(data, architecture=architecture)
    config = EvalConfig(data=data, data_dir=data_dir)
    stats = gaussian_stats(reference_features(extractor, config)[0])
    path = shipped_stats_path(data, reference_split(config), architecture)
    meta = {"extractor_sha256": extractor.sha256, "n": str(stats.n)}
    atomic_write(path, lambda tmp: save_file({"mu": stats.mu, "sigma": stats.sigma}, tmp, metadata=meta))
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, choices=sorted(EXTRACTOR_SIZES))
    parser.add_argument("--data-dir")
    parser.add_argument("--architecture", choices=sorted(ARCHITECTURES), default="cnn")
    args = parser.parse_args()
    print(json.dumps(train_extractor(args.data, args.data_dir, args.architecture), indent=2))


if __name__ == "__main__":
    main()
