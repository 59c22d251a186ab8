import io
import tarfile
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image
from tests.conftest import write_idx

from aigc.core.errors import UserError
from aigc.data import download
from aigc.data.datasets import DataConfig, describe_datasets, load_dataset, read_idx, resize


def test_digits_is_the_bundled_default_at_16_pixels():
    data = load_dataset(DataConfig())
    assert data.images.shape == (1797, 1, 16, 16) and data.images.dtype == torch.uint8
    assert data.labels.shape == (1797,) and data.labels.dtype == torch.int64
    assert data.num_classes == 10 and set(data.labels.tolist()) == set(range(10))
    assert data.images.max() > 200  # scaled from 0..16 to 0..255


def test_idx_reader_round_trips_gzip_and_raw(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert (read_idx(write_idx(tmp_path / "a.gz", array)) == array).all()
    assert (read_idx(write_idx(tmp_path / "a", array, compress=False)) == array).all()


def test_truncated_idx_file_is_named_in_the_error(tmp_path):
    path = write_idx(tmp_path / "x", np.zeros((5, 4, 4)), compress=False)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(UserError, match="truncated IDX"):
        read_idx(path)
    path.write_bytes(b"not an idx file")
    with pytest.raises(UserError, match="not an IDX file"):
        read_idx(path)


def test_mnist_found_under_data_dir_name_subfolder(tiny_mnist, monkeypatch):
    monkeypatch.delenv("AIGC_DATA_DIR", raising=False)
    train = load_dataset(DataConfig(name="mnist", data_dir=str(tiny_mnist)))
    test = load_dataset(DataConfig(name="mnist", data_dir=str(tiny_mnist)), split="test")
    assert train.images.shape == (40, 1, 28, 28) and test.images.shape == (20, 1, 28, 28)
    assert train.labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_mnist_found_through_env_root_itself_and_resized(tiny_mnist, monkeypatch):
    monkeypatch.setenv("AIGC_DATA_DIR", str(tiny_mnist / "mnist"))  # files directly in the root
    data = load_dataset(DataConfig(name="mnist", image_size=16))
    assert data.images.shape == (40, 1, 16, 16)


def test_missing_files_offline_give_one_line_naming_files_and_places(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setattr(download.Path, "home", lambda: tmp_path / "home")

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    with pytest.raises(UserError) as error:
        load_dataset(DataConfig(name="fashion-mnist", data_dir=str(tmp_path / "dir")))
    message = str(error.value)
    assert "\n" not in message
    assert "train-images-idx3-ubyte.gz" in message and "train-labels-idx1-ubyte.gz" in message
    assert str(tmp_path / "dir" / "fashion-mnist") in message and str(tmp_path / "env" / "fashion-mnist") in message


def test_download_verifies_md5_over_mirrors_and_writes_atomically(tmp_path):
    served = tmp_path / "mirror-good"
    served.mkdir()
    (served / "f.bin").write_bytes(b"payload")
    bad = tmp_path / "mirror-bad"
    bad.mkdir()
    (bad / "f.bin").write_bytes(b"tampered")
    md5 = "321c3cf486ed509164edec1e1981fec8"  # md5(b"payload")
    resource = download.Resource("f.bin", md5, (bad.as_uri() + "/", served.as_uri() + "/"))
    path = download.download(resource, tmp_path / "out")
    assert path.read_bytes() == b"payload"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f.bin"]  # no .part left behind
    with pytest.raises(download.DownloadFailed, match="md5 mismatch"):
        download.download(download.Resource("f.bin", md5, (bad.as_uri() + "/",)), tmp_path / "out2")


def write_cifar(path, records_per_batch=3):
    rng = np.random.default_rng(1)
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            labels = rng.integers(0, 10, (records_per_batch, 1), dtype=np.uint8)
            pixels = rng.integers(0, 256, (records_per_batch, 3072), dtype=np.uint8)
            blob = np.concatenate([labels, pixels], axis=1).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


def test_cifar10_binary_archive(tmp_path):
    (tmp_path / "cifar10").mkdir()
    write_cifar(tmp_path / "cifar10" / "cifar-10-binary.tar.gz")
    data = load_dataset(DataConfig(name="cifar10", data_dir=str(tmp_path)))
    assert data.images.shape == (15, 3, 32, 32) and data.num_classes == 10
    assert load_dataset(DataConfig(name="cifar10", data_dir=str(tmp_path)), "test").images.shape[0] == 3


def test_corrupt_cifar_archive_is_a_user_error(tmp_path):
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(UserError, match="unreadable archive"):
        load_dataset(DataConfig(name="cifar10", data_dir=str(tmp_path)))


def make_folder(root, corrupt=False):
    for label, colour in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
        (root / label).mkdir(parents=True)
        for k in range(3):
            Image.new("RGB", (40 + 10 * k, 30), colour).save(root / label / f"{k}.png")
    if corrupt:
        (root / "dogs" / "broken.jpg").write_bytes(b"definitely not a jpeg")
    return root


def test_folder_labels_from_subfolders_with_center_crop(tmp_path):
    data = load_dataset(DataConfig(name=f"folder:{make_folder(tmp_path / 'pics')}", image_size=16))
    assert data.images.shape == (6, 3, 16, 16)
    assert data.class_names == ("cats", "dogs") and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.images[0, 0].float().mean() > 250 and data.images[3, 2].float().mean() > 250
    gray = load_dataset(DataConfig(name=f"folder:{tmp_path / 'pics'}", image_size=8, channels=1))
    assert gray.images.shape == (6, 1, 8, 8)


def test_folder_corrupt_image_is_named_or_skipped(tmp_path):
    root = make_folder(tmp_path / "pics", corrupt=True)
    with pytest.raises(UserError, match="broken.jpg.*--skip-bad-images"):
        load_dataset(DataConfig(name=f"folder:{root}", image_size=8))
    data = load_dataset(DataConfig(name=f"folder:{root}", image_size=8, skip_bad_images=True))
    assert data.images.shape[0] == 6


def test_unknown_dataset_and_missing_folder():
    with pytest.raises(UserError, match="unknown data set 'imagenet'"):
        load_dataset(DataConfig(name="imagenet"))
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(DataConfig(name="folder:/no/such/dir"))


def test_resize_is_smooth_and_keeps_range():
    images = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    images[:, :, :, 4:] = 255
    out = resize(images, 16)
    assert out.shape == (2, 1, 16, 16) and out.dtype == torch.uint8
    assert 0 < out[0, 0, 0, 7] < 255  # the edge is interpolated, not blocky


def test_describe_reports_presence(tiny_mnist):
    rows = {row["name"]: row for row in describe_datasets(str(tiny_mnist))}
    assert rows["mnist"]["present"] and rows["digits"]["present"]
    assert str(tiny_mnist / "mnist") in rows["mnist"]["locations"]
