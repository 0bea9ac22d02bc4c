"""One backbone to a trained multi-exit network: pretrain (or load), freeze, cache, train exits."""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from lightning_modules.multi_exit.cache import FeatureCache
from lightning_modules.multi_exit.module import ClassifierModule, MultiExitModule
from search.spaces.exits import MultiExitNetwork, candidate_positions

log = logging.getLogger(__name__)


def _trainer(epochs: int) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )


def _seed_of(seed: int, key: str) -> int:
    return int(hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()[:8], 16)


class ExitPipeline:
    """``pipeline(arch) -> MultiExitNetwork`` with a pretrained frozen backbone and trained exits.

    Deterministic per (seed, arch); with ``cache_dir`` the weights are saved per architecture
    and loaded on the next call (a resumed search does not train twice).

    Args:
        space: builds the standalone backbone (``build_subnet``; NB201 at CPU size).
        datamodule: set-up data; exits train on its un-augmented train split (``recal``).
        first_block: first exit candidate, 1-based (HADAS: 5).
        backbone_epochs: brief standalone pretraining of the backbone (HADAS loads a
            pretrained supernet's subnet instead); 0 keeps the initial weights.
        exit_epochs: exit-training epochs (eq. 4, all candidate exits together).
        temperature: KD temperature.
        exit_lr: Adam learning rate of the exits.
        batch_size: exit-training batch size.
        feature_cache: train exits on cached backbone features (one backbone pass) instead of
            images (one backbone pass per epoch); the result is the same up to float16
            rounding of the stored features.
        seed: base seed (weights initialisation and data order).
        cache_dir: where trained weights are kept per architecture, or None.
    """

    def __init__(
        self,
        space: Any,
        datamodule: Any,
        first_block: int = 5,
        backbone_epochs: int = 3,
        exit_epochs: int = 5,
        temperature: float = 4.0,
        exit_lr: float = 3e-3,
        batch_size: int = 64,
        feature_cache: bool = True,
        seed: int = 0,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.space, self.datamodule = space, datamodule
        self.first_block = first_block
        self.backbone_epochs, self.exit_epochs = backbone_epochs, exit_epochs
        self.temperature, self.exit_lr, self.batch_size = temperature, exit_lr, batch_size
        self.feature_cache, self.seed = feature_cache, seed
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.timings: dict[str, dict[str, float]] = {}
        datamodule.setup("fit")

    def settings(self) -> dict[str, Any]:
        """What determines the trained weights (recorded with the search's evaluations)."""
        return {
            "space": [self.space.name, self.space.channels, self.space.cells_per_stage],
            "data": getattr(self.datamodule, "source", None),
            "first_block": self.first_block,
            "backbone_epochs": self.backbone_epochs,
            "exit_epochs": self.exit_epochs,
            "temperature": self.temperature,
            "exit_lr": self.exit_lr,
            "batch_size": self.batch_size,
            "feature_cache": self.feature_cache,
            "seed": self.seed,
        }

    def build(self, arch: Any) -> MultiExitNetwork:
        """The untrained multi-exit network of ``arch`` (seeded initialisation)."""
        torch.manual_seed(_seed_of(self.seed, self.space.serialize(arch)))
        backbone = self.space.build_subnet(arch)
        return MultiExitNetwork(
            backbone, candidate_positions(backbone.num_blocks, self.first_block)
        )

    def _path(self, arch: Any) -> Path | None:
        if self.cache_dir is None:
            return None
        key = self.space.serialize(arch) + repr(sorted(self.settings().items()))
        return self.cache_dir / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.pt"

    def __call__(self, arch: Any) -> MultiExitNetwork:
        net = self.build(arch)
        path = self._path(arch)
        if path is not None and path.is_file():
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            net.freeze_backbone()
            return net.eval()
        timing: dict[str, float] = {}
        start = time.perf_counter()
        self.pretrain_backbone(net, arch)
        timing["backbone_s"] = time.perf_counter() - start
        timing.update(self.train_exits(net, arch))
        self.timings[self.space.serialize(arch)] = timing
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(net.state_dict(), path)
        return net.eval()

    def pretrain_backbone(self, net: MultiExitNetwork, arch: Any) -> None:
        if self.backbone_epochs <= 0:
            return
        torch.manual_seed(_seed_of(self.seed + 1, self.space.serialize(arch)))
        module = ClassifierModule(
            net.backbone,
            functools.partial(
                torch.optim.SGD, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
            ),
            functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, eta_min=0.0),
        )
        _trainer(self.backbone_epochs).fit(module, self.datamodule.train_dataloader())

    def train_exits(self, net: MultiExitNetwork, arch: Any) -> dict[str, float]:
        """Eq. 4 on the frozen backbone; returns wall seconds (cache build, exit epochs)."""
        key = self.space.serialize(arch)
        torch.manual_seed(_seed_of(self.seed + 2, key))
        module = MultiExitModule(
            net, functools.partial(torch.optim.Adam, lr=self.exit_lr), temperature=self.temperature
        )
        images = self.datamodule._loader("recal", self.batch_size, seed=_seed_of(self.seed, key))
        out: dict[str, float] = {}
        if self.feature_cache:
            start = time.perf_counter()
            cache = FeatureCache.build(net, self.datamodule._loader("recal", 256))
            out["cache_build_s"] = time.perf_counter() - start
            out["cache_mb"] = cache.nbytes / 1e6
            gen = torch.Generator().manual_seed(_seed_of(self.seed + 3, key))
            loader = DataLoader(cache, batch_size=self.batch_size, shuffle=True, generator=gen)
        else:
            loader = images
        start = time.perf_counter()
        _trainer(self.exit_epochs).fit(module, loader)
        out["exit_epochs_s"] = time.perf_counter() - start
        net.eval()
        return out
