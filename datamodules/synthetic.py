"""Synthetic learnable image data, for fast unit tests only (never for reported figures)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


class SyntheticDataModule(pl.LightningDataModule):
    """Gaussian images whose class shifts a per-class mean pattern, so networks can learn.

    Exposes the same loaders as :class:`datamodules.cifar.CIFARDataModule`.
    """

    def __init__(
        self,
        num_classes: int = 10,
        image_size: int = 32,
        n_train: int = 256,
        n_valid: int = 64,
        n_test: int = 64,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.num_classes = num_classes
        self.source = "synthetic"
        self._splits: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self._splits:
            return
        hp = self.hparams
        gen = torch.Generator().manual_seed(hp.seed)
        patterns = torch.randn(hp.num_classes, 3, hp.image_size, hp.image_size, generator=gen)
        for split, n in (("train", hp.n_train), ("valid", hp.n_valid), ("test", hp.n_test)):
            y = torch.randint(0, hp.num_classes, (n,), generator=gen)
            x = patterns[y] + torch.randn(n, 3, hp.image_size, hp.image_size, generator=gen)
            self._splits[split] = TensorDataset(x, y)
        self._splits["recal"] = self._splits["train"]

    def split_sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self._splits.items() if k != "recal"}

    def _loader(
        self, split: str, shuffle: bool, batch_size: int, seed: int | None = None
    ) -> DataLoader:
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        return DataLoader(
            self._splits[split], batch_size=batch_size, shuffle=shuffle, generator=gen
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True, self.hparams.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", False, self.hparams.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False, self.hparams.eval_batch_size)

    def recalibration_dataloader(self, seed: int = 0) -> DataLoader:
        return self._loader("recal", True, self.hparams.batch_size, seed=seed)
