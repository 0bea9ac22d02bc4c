"""Synthetic learnable image data, for fast unit tests only (never for reported figures)."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from datamodules.splits import SplitDataModule


class SyntheticDataModule(SplitDataModule):
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
        self._train_seed = seed

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
