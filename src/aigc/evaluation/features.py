"""Feature extractors: small classifiers that aigc trains itself on each built-in data set (see
train_extractor.py), shipped as safetensors, in two independent builds: `cnn`, plain conv-BatchNorm-ReLU stages
with max-pooling, and `resnet`, residual blocks with GroupNorm and GELU, strided downsampling and a projection
head, trained with another seed, other augmentations and label smoothing. FID in the first is `fid`, in the
second `fid_2`: two feature spaces that rank two sets of images alike can be trusted more than either alone.
Features are 128-d (the penultimate layer), times a constant that gives them unit RMS on the training images;
class probabilities come from the same forward pass.

FID and friends are only comparable between results computed with the same extractor: every result names
the extractor's version and the sha256 of its weights.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm

from aigc.core.errors import UserError
from aigc.core.io import file_digest

FEATURE_DIM = 128
EXTRACTOR_VERSION = 1
# data set -> the image size its extractor was trained at
EXTRACTOR_SIZES = {"digits": 16, "mnist": 28, "fashion-mnist": 28}


class ClassifierNet(nn.Module):
    """Three stages of two conv-BatchNorm-ReLU (32, 64, 128 channels; max-pool between), global average
    pooling -> 128 features, then a linear classifier. Input: float [N, C, H, W] in [-1, 1]."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()

        def stage(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
            )

        self.stages = nn.ModuleList([stage(in_channels, 32), stage(32, 64), stage(64, FEATURE_DIM)])
        self.classifier = nn.Linear(FEATURE_DIM, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (features [N, 128], logits [N, num_classes])."""
        for k, stage in enumerate(self.stages):
            x = stage(x)
            if k < len(self.stages) - 1:
                x = F.max_pool2d(x, 2)
        features = x.mean(dim=(2, 3))
        return features, self.classifier(features)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(8, channels),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(8, channels),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualNet(nn.Module):
    """A 4x4 stride-2 stem (48 channels), a residual block, a strided 3x3 convolution to 96 channels and two
    more residual blocks, global average pooling and a projection to 128 features (GELU), then a linear
    classifier. Input: float [N, C, H, W] in [-1, 1]."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 48, 4, stride=2, padding=1),
            ResidualBlock(48),
            nn.Conv2d(48, 96, 3, stride=2, padding=1),
            ResidualBlock(96),
            ResidualBlock(96),
            nn.GroupNorm(8, 96),
            nn.GELU(),
        )
        self.project = nn.Sequential(nn.Linear(96, FEATURE_DIM), nn.GELU())
        self.classifier = nn.Linear(FEATURE_DIM, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (features [N, 128], logits [N, num_classes])."""
        features = self.project(self.body(x).mean(dim=(2, 3)))
        return features, self.classifier(features)


ARCHITECTURES = {"cnn": ClassifierNet, "resnet": ResidualNet}
SECOND_ARCHITECTURE = "resnet"  # fid_2's; the cnn is fid's


@dataclass
class Extractor:
    """A loaded extractor: the network, the image shape it expects, and its identity for reports."""

    net: nn.Module
    data: str
    architecture: str
    image_size: int
    channels: int
    sha256: str
    test_accuracy: float
    feature_scale: float  # makes the features' RMS 1 on the training set, so KID's cubic kernel stays O(1)

    @property
    def name(self) -> str:
        return f"aigc-{self.data}-{self.architecture}-v{EXTRACTOR_VERSION}"

    def describe(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "test_accuracy": self.test_accuracy}

    @torch.no_grad()
    def __call__(
        self, images: torch.Tensor, batch_size: int = 500, progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 [N, C, H, W] -> (features [N, 128] float64, class probabilities [N, K] float64)."""
        if tuple(images.shape[1:]) != (self.channels, self.image_size, self.image_size):
            print(
                f"notice: images of shape {tuple(images.shape[1:])} are converted to the extractor's "
                f"{(self.channels, self.image_size, self.image_size)}",
                file=sys.stderr,
            )
        features, probs = [], []
        device = next(self.net.parameters()).device
        for batch in tqdm(images.split(batch_size), desc="features", unit="batch", disable=not progress):
            x = prepare(batch, self.image_size, self.channels).to(device)
            f, logits = self.net(x)
            features.append(f.double().cpu() * self.feature_scale)
            probs.append(logits.double().softmax(dim=1).cpu())
        return torch.cat(features), torch.cat(probs)


def prepare(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float [N, channels, size, size] in [-1, 1]: the extractor's input."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise UserError(f"expected uint8 images [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
    x = images.float()
    if x.shape[1] != channels:
        if channels == 1 and x.shape[1] == 3:
            x = (x * torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]).sum(1, keepdim=True)
        else:
            raise UserError(f"images have {x.shape[1]} channels; this extractor takes {channels}")
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return x.clamp(0, 255) / 127.5 - 1


def weights_path(data: str, architecture: str = "cnn") -> Path:
    name = data if architecture == "cnn" else f"{data}-{architecture}"  # the first build kept its file name
    return Path(str(resources.files("aigc.evaluation") / "weights" / f"{name}.safetensors"))


def load_extractor(data: str, device: str | torch.device = "cpu", architecture: str = "cnn") -> Extractor:
    """The shipped extractor of `architecture` for a built-in data set; a one-line error names the ones that
    exist."""
    if data not in EXTRACTOR_SIZES:
        available = ", ".join(EXTRACTOR_SIZES)
        raise UserError(
            f"no aigc feature extractor for {data!r}; extractors exist for {available}, "
            "or use --features inception (RGB data, optional extra)"
        )
    path = weights_path(data, architecture)
    if not path.is_file():
        raise UserError(
            f"extractor weights {path} are missing; run python -m aigc.evaluation.train_extractor --data {data}"
            + ("" if architecture == "cnn" else f" --architecture {architecture}")
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["extractor"])
        state = load_file(str(path))
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as error:
        raise UserError(f"extractor weights {path} are unreadable ({error}); reinstall aigc") from None
    net = ARCHITECTURES[architecture](meta["channels"], meta["num_classes"])
    net.load_state_dict(state)
    return Extractor(
        net.to(device).eval().requires_grad_(False),
        data,
        architecture,
        meta["image_size"],
        meta["channels"],
        file_digest(path),
        meta["test_accuracy"],
        meta["feature_scale"],
    )


class InceptionExtractor:
    """Inception-v3 pool features (2048-d) and logits through torch-fidelity, for numbers comparable with papers.

    Optional: `pip install 'aigc[inception]'` needs a torch whose torchvision imports; the weights download
    from GitHub on first use.
    """

    name = "inception-v3-compat (torch-fidelity)"
    architecture = "inception"
    sha256 = "inception-v3-compat"
    test_accuracy = None

    def __init__(self, device: str | torch.device = "cpu"):
        try:
            from torch_fidelity import FeatureExtractorInceptionV3
        except Exception as error:  # ImportError, or torchvision failing to load beside this torch
            raise UserError(
                f"--features inception needs torch-fidelity ({type(error).__name__}: {error}); "
                "pip install 'aigc[inception]' with a torch whose torchvision works, or use the aigc extractors"
            ) from None
        try:
            self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])
        except Exception as error:
            raise UserError(
                f"Inception-v3 weights could not be loaded ({error}); they are downloaded once from GitHub "
                "into torch's hub cache - run once with network access"
            ) from None
        self.net = self.net.to(device).eval()
        self.device = device

    def describe(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "test_accuracy": None}

    @torch.no_grad()
    def __call__(
        self, images: torch.Tensor, batch_size: int = 100, progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features, probs = [], []
        for batch in tqdm(images.split(batch_size), desc="features", unit="batch", disable=not progress):
            rgb = batch.expand(-1, 3, -1, -1) if batch.shape[1] == 1 else batch
            f, logits = self.net(rgb.to(self.device))
            features.append(f.double().cpu())
            probs.append(logits.double().softmax(dim=1).cpu())
        return torch.cat(features), torch.cat(probs)
