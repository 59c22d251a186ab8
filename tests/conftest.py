import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

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
