"""CIFAR-10 / CIFAR-100 datamodule reading every common on-disk form, with a held-out valid split.

Sources, tried in this order for ``data_dir``:

1. a zip of an ImageFolder tree (``train/<class>/*.jpg``, ``test/<class>/*.jpg``): ``data_dir``
   itself, or the one such zip inside it;
2. an ImageFolder tree: ``data_dir/train/<class>/`` and ``data_dir/test/<class>/``;
3. the torchvision binary release (``cifar-10-batches-py`` / ``cifar-100-python``);
4. a torchvision download into ``data_dir`` when ``download=True`` (needs the internet);
5. CIFAR-10 only, and only when no ``data_dir`` is given (None): the real 6,000-image subset
   embedded in the package, with one log line. A ``data_dir`` that holds no data is an error.

Images are decoded once into a uint8 tensor in memory (CIFAR is 184 MB raw), so an epoch never
touches the disk. The train images are split once with a fixed seed into train / valid, the
NAS-Bench-201 protocol: weights are trained on the train split and architectures are ranked on
the valid split; the official test split stays untouched.
"""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from datamodules.embedded import EMBEDDED_ZIP
from datamodules.splits import SplitDataModule

log = logging.getLogger(__name__)

STATS = {  # per-channel mean / std of the training images
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
BINARY_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
LAYOUT = "'train/<class>/*.jpg' + 'test/<class>/*.jpg'"  # the ImageFolder layout of zips / trees


class ImageTensorDataset(Dataset):
    """uint8 NHWC images + labels, returned normalised as CHW float, optionally augmented.

    Augmentation is the standard CIFAR one: 4-pixel zero-padded random crop and random
    horizontal flip. Its draws come from a generator seeded with ``(seed, epoch, index)``, not
    from torch's global RNG, so an image's augmentation does not depend on what else drew random
    numbers, on the DataLoader workers, or on whether the run was resumed. ``index`` may be an
    ``(index, epoch)`` pair (what :class:`~datamodules.splits.EpochShuffleSampler` yields with
    ``with_epoch=True``); a plain index counts as epoch 0.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        augment: bool,
        seed: int = 0,
    ) -> None:
        self.images, self.labels, self.augment, self.seed = images, labels, augment, seed
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        i, epoch = key if isinstance(key, tuple) else (key, 0)
        x = self.images[i].permute(2, 0, 1).float().div_(255)
        x = (x - self.mean) / self.std  # normalise first so padding is zero in normalised space
        if self.augment:
            rng = np.random.default_rng([self.seed, epoch, i])
            top, left = rng.integers(0, 9, 2).tolist()
            x = torch.nn.functional.pad(x, (4, 4, 4, 4))
            x = x[:, top : top + 32, left : left + 32]
            if rng.random() < 0.5:
                x = x.flip(2)
        return x, self.labels[i]


def _decode(blob: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(blob)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _pack(images: list[np.ndarray], labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.long)


def read_image_zip(path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Decode a zipped ImageFolder tree into ``{split: (images, labels)}``; classes sorted.

    Raises:
        ValueError: the file is not a readable zip (names it and the expected layout).
        FileNotFoundError: a split has no images.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(
            f"{str(path)!r} is not a readable zip ({err}); expected a zip of {LAYOUT}"
        ) from err
    with zf:
        names = sorted(n for n in zf.namelist() if n.lower().endswith((".jpg", ".jpeg", ".png")))
        classes = sorted({n.split("/")[-2] for n in names})
        out = {}
        for split in ("train", "test"):
            files = [n for n in names if n.split("/")[-3:-2] == [split]]
            if not files:
                raise FileNotFoundError(f"zip {str(path)!r} has no images under '{split}/<class>/'")
            images = [_decode(zf.read(n)) for n in files]
            labels = [classes.index(n.split("/")[-2]) for n in files]
            out[split] = _pack(images, labels)
    return out


def read_image_folder(root: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Decode an ImageFolder tree (``root/{train,test}/<class>/*``); classes sorted."""
    out = {}
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    for split in ("train", "test"):
        files = sorted(p for c in classes for p in (root / split / c).glob("*") if p.is_file())
        out[split] = _pack(
            [_decode(p.read_bytes()) for p in files], [classes.index(p.parent.name) for p in files]
        )
    return out


def read_torchvision(
    root: Path, dataset: str, download: bool
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Read (or download) the torchvision binary release."""
    from torchvision import datasets

    cls = datasets.CIFAR10 if dataset == "cifar10" else datasets.CIFAR100
    out = {}
    for split in ("train", "test"):
        ds = cls(str(root), train=split == "train", download=download)
        out[split] = (torch.from_numpy(ds.data), torch.tensor(ds.targets, dtype=torch.long))
    return out


def _is_image_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.startswith("train/") for n in zf.namelist()[:1000])
    except zipfile.BadZipFile:
        return False


def _layouts(dataset: str) -> str:
    return (
        f"a zip of {LAYOUT}, a folder holding such a zip, that tree unzipped, or the torchvision "
        f"folder '{BINARY_FOLDERS[dataset]}'; or set download=true when online"
    )


def locate(data_dir: str | Path | None, dataset: str, download: bool, allow_embedded: bool):
    """Find the source for ``dataset`` under ``data_dir``; returns ``(kind, path)``.

    With no ``data_dir`` (None) CIFAR-10 falls back to the embedded subset when
    ``allow_embedded``; a ``data_dir`` that was given but holds no data is always an error,
    never a silent fallback.

    Raises:
        FileNotFoundError: naming the folder and the layouts it may hold.
    """
    root = Path(data_dir).expanduser() if data_dir is not None else None
    if root is None:
        if dataset == "cifar10" and allow_embedded:
            return "embedded", EMBEDDED_ZIP
        raise FileNotFoundError(f"no data_dir given for {dataset}: point it at {_layouts(dataset)}")
    if root.is_file() and root.suffix == ".zip":
        return "zip", root
    bad_zips: list[Path] = []
    if root.is_dir():
        for candidate in (root, root / dataset):
            if candidate.is_dir():
                found = sorted(candidate.glob("*.zip"))
                zips = [p for p in found if _is_image_zip(p)]
                bad_zips += [p for p in found if p not in zips]
                if zips:
                    return "zip", zips[0]
        if (root / "train").is_dir() and (root / "test").is_dir():
            return "folder", root
        if (root / BINARY_FOLDERS[dataset]).is_dir():
            return "torchvision", root
    if download:
        return "download", root
    what = "does not exist" if not root.exists() else "holds none of the known layouts"
    skipped = f" (skipped zips that are unreadable or lack 'train/': {[str(p) for p in bad_zips]})"
    raise FileNotFoundError(
        f"no {dataset} data found at data_dir={str(root)!r}: the path {what}"
        f"{skipped if bad_zips else ''}. It may hold: {_layouts(dataset)}. Leave data_dir unset "
        "(null) to use the embedded CIFAR-10 subset."
    )


class CIFARDataModule(SplitDataModule):
    """CIFAR-10/100 with a fixed-seed train/valid split of the training images.

    Args:
        dataset: ``cifar10`` or ``cifar100``.
        data_dir: where to look for the data (see module docstring); None uses the embedded
            CIFAR-10 subset. A path that holds no data is an error (no silent fallback).
        batch_size: training batch size.
        eval_batch_size: batch size of valid / test / recalibration loaders.
        valid_fraction: share of the training images held out to rank architectures.
        split_seed: seed of the train/valid split (fixed so rankings are comparable).
        shuffle_seed: seed of the per-epoch training order.
        max_train_images: cap on the train split (None = all), for budgeted runs.
        num_workers: DataLoader workers.
        download: download through torchvision when nothing is found (needs the internet).
        allow_embedded: use the embedded CIFAR-10 subset when ``data_dir`` is None.
    """

    def __init__(
        self,
        dataset: str = "cifar10",
        data_dir: str | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        valid_fraction: float = 0.2,
        split_seed: int = 0,
        shuffle_seed: int = 0,
        max_train_images: int | None = None,
        num_workers: int = 0,
        download: bool = False,
        allow_embedded: bool = True,
    ) -> None:
        super().__init__()
        if dataset not in STATS:
            raise ValueError(f"unknown dataset {dataset!r}; valid: {sorted(STATS)}")
        if not 0.0 < valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
        self.save_hyperparameters()
        self.dataset = dataset
        self.num_classes = NUM_CLASSES[dataset]
        self.source: str | None = None
        self._splits: dict[str, ImageTensorDataset] = {}
        self._train_seed, self._num_workers = shuffle_seed, num_workers

    def setup(self, stage: str | None = None) -> None:
        if self._splits:
            return
        hp = self.hparams
        kind, path = locate(hp.data_dir, hp.dataset, hp.download, hp.allow_embedded)
        if kind == "embedded":
            log.warning(
                "No data_dir given: using the embedded real subset of CIFAR-10 (500 train + "
                "100 test images per class). For the full dataset set data.data_dir=<folder or "
                "zip> (or HWNAS_CIFAR10_DIR) or data.download=true."
            )
        if kind in ("zip", "embedded"):
            raw = read_image_zip(path)
        elif kind == "folder":
            raw = read_image_folder(path)
        else:
            raw = read_torchvision(path, hp.dataset, download=kind == "download")
        self.source = f"{kind}:{path}"
        train_x, train_y = raw["train"]
        perm = np.random.default_rng(hp.split_seed).permutation(len(train_y))
        n_valid = int(round(hp.valid_fraction * len(train_y)))
        valid_idx, train_idx = perm[:n_valid], perm[n_valid:]
        if hp.max_train_images is not None:
            train_idx = train_idx[: hp.max_train_images]
        mean, std = STATS[hp.dataset]
        t_valid, t_train = torch.from_numpy(valid_idx), torch.from_numpy(train_idx)
        self._splits = {
            "train": ImageTensorDataset(
                train_x[t_train], train_y[t_train], mean, std, augment=True, seed=hp.shuffle_seed
            ),
            # Recalibration sees training images without augmentation, as at inference.
            "recal": ImageTensorDataset(
                train_x[t_train], train_y[t_train], mean, std, augment=False
            ),
            "valid": ImageTensorDataset(
                train_x[t_valid], train_y[t_valid], mean, std, augment=False
            ),
            "test": ImageTensorDataset(*raw["test"], mean, std, augment=False),
        }
        log.info(
            "%s from %s: %d train / %d valid / %d test images",
            hp.dataset,
            self.source,
            *(len(self._splits[s]) for s in ("train", "valid", "test")),
        )
