"""CIFAR datamodule: every source layout, the embedded subset, splits and normalisation."""

from __future__ import annotations

import logging
import pickle
import zipfile

import numpy as np
import pytest
import torch

from datamodules.cifar import CIFARDataModule, locate, read_image_zip
from datamodules.embedded import EMBEDDED_ZIP
from datamodules.splits import EpochShuffleSampler


@pytest.fixture(scope="module")
def embedded():
    return read_image_zip(EMBEDDED_ZIP)


def test_embedded_subset_is_real_balanced_cifar10(embedded):
    x, y = embedded["train"]
    assert x.shape == (5000, 32, 32, 3) and x.dtype == torch.uint8
    assert torch.bincount(y).tolist() == [500] * 10
    assert torch.bincount(embedded["test"][1]).tolist() == [100] * 10
    # Real photos, not noise: CIFAR-10 channel means (0.49, 0.48, 0.45) to two decimals.
    means = x.float().div(255).mean((0, 1, 2))
    torch.testing.assert_close(means, torch.tensor([0.4914, 0.4822, 0.4465]), atol=0.02, rtol=0)


def test_no_data_dir_falls_back_to_embedded_with_a_log_line(caplog):
    dm = CIFARDataModule(data_dir=None)
    with caplog.at_level(logging.WARNING):
        dm.setup()
    assert "embedded real subset" in caplog.text and "data.data_dir" in caplog.text
    assert dm.source.startswith("embedded")
    assert dm.split_sizes() == {"train": 4000, "valid": 1000, "test": 1000}


def test_missing_data_without_fallback_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.*cifar-10-batches-py"):
        locate(tmp_path / "nothing", "cifar10", download=False, allow_embedded=False)
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        locate(tmp_path, "cifar100", download=False, allow_embedded=True)
    with pytest.raises(ValueError, match="valid: \\['cifar10', 'cifar100'\\]"):
        CIFARDataModule(dataset="mnist")


def test_explicit_wrong_path_is_an_error_not_a_fallback(tmp_path):
    """A given data_dir that holds no data names the path and the layouts, even with the subset."""
    for where, what in ((tmp_path / "nonexistent", "does not exist"), (tmp_path, "holds none")):
        dm = CIFARDataModule(data_dir=str(where), allow_embedded=True)
        with pytest.raises(FileNotFoundError, match=f"{where}.*{what}.*train/<class>/\\*.jpg"):
            dm.setup()
    with pytest.raises(FileNotFoundError, match="no data_dir given for cifar100"):
        locate(None, "cifar100", download=False, allow_embedded=True)


def test_corrupt_zip_names_the_file_and_the_layout(tmp_path):
    bad = tmp_path / "cifar10_jpeg.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ValueError, match=f"{bad}.*not a readable zip.*train/<class>/\\*.jpg"):
        CIFARDataModule(data_dir=str(bad)).setup()
    # Inside a folder the corrupt zip is skipped, and the error says so.
    with pytest.raises(FileNotFoundError, match=f"skipped zips.*{bad.name}"):
        CIFARDataModule(data_dir=str(tmp_path)).setup()


def test_augmentation_depends_only_on_seed_epoch_and_index():
    """Crops / flips come from (seed, epoch, index), never from torch's global RNG."""
    dm = CIFARDataModule(data_dir=None, shuffle_seed=3)
    dm.setup()
    train = dm._splits["train"]
    torch.manual_seed(0)
    first = torch.stack([train[(i, 1)][0] for i in range(32)])
    torch.manual_seed(123)  # another global RNG state changes nothing
    assert torch.equal(torch.stack([train[(i, 1)][0] for i in range(32)]), first)
    other_epoch = torch.stack([train[(i, 2)][0] for i in range(32)])
    assert not torch.equal(other_epoch, first)
    other = CIFARDataModule(data_dir=None, shuffle_seed=4)
    other.setup()
    assert not torch.equal(
        torch.stack([other._splits["train"][(i, 1)][0] for i in range(32)]), first
    )
    # The training loader hands (index, epoch) keys to the dataset; Lightning sets the epoch.
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(1)
    x, _ = next(iter(loader))
    order = list(loader.sampler)[:64]
    assert order[0][1] == 1
    assert torch.equal(x, torch.stack([train[k][0] for k in order]))


def _write_tree(embedded, root, per_class=3):
    """An ImageFolder tree and a zip of it, made from real embedded images."""
    from PIL import Image

    classes = [f"c{i}" for i in range(10)]
    for split in ("train", "test"):
        x, y = embedded[split]
        for c in range(10):
            idx = torch.nonzero(y == c).flatten()[:per_class]
            (root / split / classes[c]).mkdir(parents=True)
            for k, i in enumerate(idx.tolist()):
                Image.fromarray(x[i].numpy()).save(root / split / classes[c] / f"{k}.png")
    with zipfile.ZipFile(root.parent / "tree.zip", "w") as zf:
        for f in sorted(root.rglob("*.png")):
            zf.write(f, f.relative_to(root).as_posix())


def test_folder_zip_and_torchvision_layouts_read_the_same_images(embedded, tmp_path, monkeypatch):
    root = tmp_path / "tree"
    _write_tree(embedded, root)
    assert locate(root, "cifar10", False, False) == ("folder", root)
    assert locate(tmp_path / "tree.zip", "cifar10", False, False)[0] == "zip"
    folder = CIFARDataModule(data_dir=str(root), valid_fraction=0.5, allow_embedded=False)
    zipped = CIFARDataModule(data_dir=str(tmp_path / "tree.zip"), valid_fraction=0.5)
    folder.setup()
    zipped.setup()
    for split in ("train", "valid", "test"):
        a, b = folder._splits[split], zipped._splits[split]
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)

    # torchvision binary layout built from the same images (checksums bypassed: files are ours).
    bin_dir = tmp_path / "bin" / "cifar-10-batches-py"
    bin_dir.mkdir(parents=True)
    x, y = folder._splits["test"].images, folder._splits["test"].labels
    record = {"data": x.permute(0, 3, 1, 2).reshape(len(x), -1).numpy(), "labels": y.tolist()}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (bin_dir / name).write_bytes(pickle.dumps(record))
    meta = {"label_names": [f"c{i}" for i in range(10)]}
    (bin_dir / "batches.meta").write_bytes(pickle.dumps(meta))
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(CIFAR10, "_load_meta", lambda self: None)
    assert locate(tmp_path / "bin", "cifar10", False, False)[0] == "torchvision"
    binary = CIFARDataModule(data_dir=str(tmp_path / "bin"), allow_embedded=False)
    binary.setup()
    assert torch.equal(binary._splits["test"].images, x)


def test_split_is_fixed_by_seed_disjoint_and_complete():
    def valid_images(seed):
        dm = CIFARDataModule(data_dir=None, split_seed=seed)
        dm.setup()
        return dm._splits["valid"].images, dm._splits["train"].images

    v0, t0 = valid_images(0)
    v0b, _ = valid_images(0)
    v1, _ = valid_images(1)
    assert torch.equal(v0, v0b) and not torch.equal(v0, v1)
    assert len(v0) + len(t0) == 5000


def test_normalised_augmented_batches_and_epoch_order():
    dm = CIFARDataModule(data_dir=None)
    dm.setup()
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (256, 3, 32, 32)
    assert abs(x.mean().item()) < 0.15 and abs(x.std().item() - 1) < 0.15
    sampler = EpochShuffleSampler(100, seed=3)
    sampler.set_epoch(1)
    first = list(sampler)
    sampler.set_epoch(2)
    assert list(sampler) != first and sorted(first) == list(range(100))
    sampler.set_epoch(1)
    assert list(sampler) == first


def test_full_cifar10_jpeg_zip_is_found_and_read(shared_data):
    kind, path = locate(shared_data / "cifar10", "cifar10", False, False)
    assert kind == "zip" and path.name == "cifar10_jpeg.zip"
    dm = CIFARDataModule(data_dir=str(shared_data / "cifar10"), allow_embedded=False)
    dm.setup()
    assert dm.split_sizes() == {"train": 40000, "valid": 10000, "test": 10000}
    labels = dm._splits["test"].labels
    assert torch.bincount(labels).tolist() == [1000] * 10
    assert np.isclose(dm._splits["train"].images.float().mean().item() / 255, 0.473, atol=0.01)
