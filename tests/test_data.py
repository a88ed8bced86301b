import hashlib
import json
import os
import pickle

import numpy as np
import pytest
import torch

from cifarnb.data import (
    BATCH_FOLDER,
    CorruptDataError,
    DataNotFoundError,
    first_test_image,
    load_cifar10,
    resolve_root,
)


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def test_shared_copy_matches_its_provenance_fingerprints(cifar, cifar_root):
    provenance_path = cifar_root / "provenance.json"
    if not provenance_path.exists():
        pytest.skip("no provenance.json beside this data copy")
    provenance = json.loads(provenance_path.read_text())
    assert cifar.x_train.shape == (50_000, 3, 32, 32) and cifar.x_train.dtype == torch.uint8
    assert cifar.x_test.shape == (10_000, 3, 32, 32) and cifar.y_test.dtype == torch.int64
    train_nhwc = cifar.x_train.permute(0, 2, 3, 1).numpy()
    assert sha256(train_nhwc) == provenance["train"]["sha256_uint8_NHWC"]
    assert sha256(cifar.y_train.numpy().astype(np.uint8)) == provenance["train"]["labels_sha256_uint8"]
    start, stop = provenance["test"]["exact_rows"]
    test_nhwc = cifar.x_test[start:stop].permute(0, 2, 3, 1).numpy()
    assert sha256(test_nhwc) == provenance["test"]["sha256_uint8_NHWC_rows_0_1000"]
    assert sha256(cifar.y_test.numpy().astype(np.uint8)) == provenance["test"]["labels_sha256_uint8"]
    assert cifar.classes[3] == "cat"


def test_first_test_image_is_the_official_cat(cifar_root, cifar):
    image, label = first_test_image(cifar_root)
    assert label == 3 and torch.equal(image, cifar.x_test[0])


def test_subsets_are_class_balanced_and_seeded(cifar):
    small = cifar.subset(n_train=100, n_test=25, seed=3)
    assert torch.bincount(small.y_train, minlength=10).tolist() == [10] * 10
    counts = torch.bincount(small.y_test, minlength=10)
    assert counts.sum() == 25 and counts.max() - counts.min() <= 1
    again = cifar.subset(n_train=100, n_test=25, seed=3)
    other = cifar.subset(n_train=100, n_test=25, seed=4)
    assert torch.equal(small.x_train, again.x_train)
    assert not torch.equal(small.x_train, other.x_train)


def test_subset_size_out_of_range_names_the_field(cifar):
    with pytest.raises(ValueError, match="n_train=0"):
        cifar.subset(n_train=0)
    with pytest.raises(ValueError, match="n_test=20000"):
        cifar.subset(n_test=20_000)


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DataNotFoundError, match="download=True.*CIFARNB_DATA"):
        load_cifar10(tmp_path / "nowhere")


def test_root_falls_back_to_env_then_data(monkeypatch, tmp_path):
    monkeypatch.setenv("CIFARNB_DATA", str(tmp_path))
    assert resolve_root() == tmp_path
    monkeypatch.delenv("CIFARNB_DATA")
    assert str(resolve_root()) == "data"


@pytest.fixture
def copy_of_shared(cifar_root, tmp_path):
    """A data folder whose files link to the shared copy, so a test can replace one of them."""
    folder = tmp_path / BATCH_FOLDER
    folder.mkdir()
    for source in (cifar_root / BATCH_FOLDER).iterdir():
        os.symlink(source, folder / source.name)
    return tmp_path


def replace_batch(root, name, content: bytes):
    path = root / BATCH_FOLDER / name
    path.unlink()
    path.write_bytes(content)


def test_truncated_batch_names_the_file(copy_of_shared, cifar_root):
    head = (cifar_root / BATCH_FOLDER / "data_batch_3").read_bytes()[:100_000]
    replace_batch(copy_of_shared, "data_batch_3", head)
    with pytest.raises(CorruptDataError, match="data_batch_3.*truncated") as error:
        load_cifar10(copy_of_shared)
    assert error.value.__cause__ is None and "\n" not in str(error.value)


def test_wrong_shape_names_the_file(copy_of_shared):
    batch = {b"data": np.zeros((10_000, 1024), np.uint8), b"labels": [0] * 10_000}
    replace_batch(copy_of_shared, "test_batch", pickle.dumps(batch))
    with pytest.raises(CorruptDataError, match="test_batch.*shape"):
        load_cifar10(copy_of_shared)


def test_labels_out_of_range_name_the_file(copy_of_shared):
    batch = {b"data": np.zeros((10_000, 3072), np.uint8), b"labels": [10] * 10_000}
    replace_batch(copy_of_shared, "data_batch_1", pickle.dumps(batch))
    with pytest.raises(CorruptDataError, match="data_batch_1.*labels"):
        load_cifar10(copy_of_shared)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_unpickling_cannot_run_code(copy_of_shared, tmp_path):
    marker = tmp_path / "code-ran"
    replace_batch(copy_of_shared, "data_batch_2", pickle.dumps({b"data": _RunsCode(marker), b"labels": []}))
    with pytest.raises(CorruptDataError, match="data_batch_2"):
        load_cifar10(copy_of_shared)
    assert not marker.exists()


def test_download_is_asked_for_only_when_allowed_and_missing(monkeypatch, tmp_path, cifar_root):
    import cifarnb.data as data_module

    fetched = []

    def fake_download(root):  # stands in for torchvision's checksum-verified fetch of the official archive
        fetched.append(root)
        os.symlink(cifar_root / BATCH_FOLDER, root / BATCH_FOLDER)

    monkeypatch.setattr(data_module, "_download", fake_download)
    with pytest.raises(DataNotFoundError):
        load_cifar10(tmp_path)
    assert fetched == []
    data = load_cifar10(tmp_path, download=True, n_train=10, n_test=10)
    assert fetched == [tmp_path] and len(data.y_train) == 10
    load_cifar10(tmp_path, download=True, n_train=10, n_test=10)
    assert len(fetched) == 1  # present now: not fetched again


def test_download_repairs_a_partial_or_damaged_folder(monkeypatch, tmp_path):
    import tarfile

    import cifarnb.data as data_module

    rows = 10  # tiny fake batches: the row count every batch is checked against, shrunk for the test
    monkeypatch.setattr(data_module, "ROWS_PER_BATCH", rows)
    source = tmp_path / "source" / BATCH_FOLDER
    source.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in (*data_module.TRAIN_FILES, data_module.TEST_FILE):
        batch = {b"data": rng.integers(0, 256, (rows, 3072), dtype=np.uint8), b"labels": list(range(rows))}
        (source / name).write_bytes(pickle.dumps(batch))
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=BATCH_FOLDER)
    fetched = []

    def fake_download(root):  # stands in for torchvision's fetch: extracts the archive over what is there
        fetched.append(root)
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")

    monkeypatch.setattr(data_module, "_download", fake_download)
    root = tmp_path / "data"
    folder = root / BATCH_FOLDER
    folder.mkdir(parents=True)
    (folder / "data_batch_1").write_bytes((source / "data_batch_1").read_bytes())  # partial: one batch only
    data = load_cifar10(root, download=True)
    assert len(fetched) == 1 and len(data.y_train) == 5 * rows
    (folder / "data_batch_3").write_bytes(b"truncated")  # damaged
    data_module._load_whole.cache_clear()  # the per-process cache would still serve the good copy
    with pytest.raises(CorruptDataError, match="data_batch_3"):
        load_cifar10(root)
    data = load_cifar10(root, download=True)
    assert len(fetched) == 2 and len(data.y_test) == rows
    load_cifar10(root, download=True)
    assert len(fetched) == 2  # complete and valid: not fetched again
