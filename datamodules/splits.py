"""Base datamodule over in-memory train / valid / test / recalibration splits."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochShuffleSampler(Sampler):
    """Shuffled order that depends only on (seed, epoch).

    Lightning calls ``set_epoch`` before every epoch, so a run resumed from a checkpoint sees the
    same order as an uninterrupted one (a plain shuffling DataLoader would restart its stream).
    With ``with_epoch=True`` it yields ``(index, epoch)`` pairs, so a dataset that augments can
    seed each image's draws from its epoch, also inside DataLoader workers (which never see
    ``set_epoch``).
    """

    def __init__(self, size: int, seed: int, with_epoch: bool = False) -> None:
        self.size, self.seed, self.epoch, self.with_epoch = size, seed, 0, with_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size).tolist()
        return iter([(i, self.epoch) for i in order] if self.with_epoch else order)

    def __len__(self) -> int:
        return self.size


class SplitDataModule(pl.LightningDataModule):
    """Loaders over ``self._splits`` (filled by ``setup``): train, valid, test and recal.

    Subclasses set ``num_classes``, ``source`` and ``_splits``; ``_train_seed`` fixes the
    per-epoch training order and ``_num_workers`` the loader workers.
    """

    _splits: dict[str, Dataset]
    _train_seed: int = 0
    _num_workers: int = 0

    def split_sizes(self) -> dict[str, int]:
        """Images per split (the recalibration split is the train split without augmentation)."""
        return {k: len(v) for k, v in self._splits.items() if k != "recal"}

    def _loader(self, split: str, batch_size: int, seed: int | None = None) -> DataLoader:
        data = self._splits[split]
        # Only augmenting datasets take (index, epoch) keys; TensorDatasets need plain indices.
        with_epoch = bool(getattr(data, "augment", False))
        return DataLoader(
            data,
            batch_size=batch_size,
            sampler=None if seed is None else EpochShuffleSampler(len(data), seed, with_epoch),
            drop_last=split == "train",
            num_workers=self._num_workers,
            persistent_workers=self._num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.hparams.batch_size, seed=self._train_seed)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", self.hparams.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.hparams.eval_batch_size)

    def recalibration_dataloader(self, seed: int = 0) -> DataLoader:
        """Training images in a fixed shuffled order, no augmentation, for BN recalibration."""
        return self._loader("recal", self.hparams.batch_size, seed=seed)
