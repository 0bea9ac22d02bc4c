"""Exit training on a frozen backbone (HADAS IV-B2), and brief standalone backbone training."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from lightning_modules.multi_exit.losses import exit_loss
from search.spaces.exits import MultiExitNetwork


class MultiExitModule(pl.LightningModule):
    """Trains all candidate exits of a :class:`MultiExitNetwork` together with eq. 4.

    The backbone is frozen (no gradients, BN in eval mode) so its static accuracy is untouched;
    the teacher of the KD term is its own final classifier. Batches are either images
    ``(x, y)`` (the backbone runs every step) or cached features
    ``(features, teacher_logits, y)`` from :class:`~lightning_modules.multi_exit.cache.FeatureCache`
    (the backbone never runs).

    Args:
        network: the multi-exit network (its backbone pretrained).
        optimizer: partial optimizer, completed with the exit parameters.
        scheduler: partial LR scheduler (``T_max`` = total steps is filled in), or None.
        temperature: KD temperature T of eq. 4.
    """

    def __init__(
        self,
        network: MultiExitNetwork,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        temperature: float = 4.0,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.save_hyperparameters(ignore=["network", "optimizer", "scheduler"])
        self.net = network
        self.net.freeze_backbone()
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.temperature = temperature
        self.val_acc = nn.ModuleList(
            MulticlassAccuracy(network.num_classes, average="micro")
            for _ in range(len(network.positions) + 1)
        )

    def configure_optimizers(self) -> Any:
        return _optimizers(self, self.net.exits.parameters())

    def _outputs(self, batch: Any) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Exit logits, teacher logits and labels of an image or a cached-feature batch."""
        if len(batch) == 3:
            features, teacher, y = batch
            features = [f.float() for f in features]
        else:
            x, y = batch
            with torch.no_grad():
                features, teacher = self.net.backbone_features(x)
        return self.net.exit_logits(features), teacher.float(), y

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        logits, teacher, y = self._outputs(batch)
        loss = exit_loss(logits, teacher, y, self.temperature)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        logits, teacher, y = self._outputs(batch)
        self.log("val/loss", exit_loss(logits, teacher, y, self.temperature), batch_size=len(y))
        for metric, z in zip(self.val_acc, [*logits, teacher], strict=True):
            metric.update(z, y)

    def on_validation_epoch_end(self) -> None:
        names = [f"exit@{p}" for p in self.net.positions] + ["final"]
        for name, metric in zip(names, self.val_acc, strict=True):
            self.log(f"val/acc_{name}", 100.0 * metric.compute())
            metric.reset()


class ClassifierModule(pl.LightningModule):
    """Plain cross-entropy training of a standalone network (a backbone, before exits).

    HADAS takes its backbones from a pretrained supernet; CPU-sized runs without one pretrain
    each backbone briefly with this module instead.
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        grad_clip_norm: float | None = 5.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["network", "optimizer", "scheduler"])
        self.net = network
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.val_acc = MulticlassAccuracy(network.num_classes, average="micro")

    def configure_optimizers(self) -> Any:
        return _optimizers(self, self.net.parameters())

    def configure_gradient_clipping(
        self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ):
        if self.hparams.grad_clip_norm is not None:
            self.clip_gradients(optimizer, self.hparams.grad_clip_norm, "norm")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.val_acc.update(self.net(x), y)

    def on_validation_epoch_end(self) -> None:
        self.log("val/acc", 100.0 * self.val_acc.compute())
        self.val_acc.reset()


def _optimizers(module: pl.LightningModule, params: Any) -> Any:
    """The module's partial optimizer on ``params``, with its partial scheduler (``T_max`` =
    the fit's optimizer steps, stepped every step) when it has one."""
    optimizer = module.optimizer_factory(params)
    if module.scheduler_factory is None:
        return optimizer
    steps = int(module.trainer.estimated_stepping_batches)
    scheduler = module.scheduler_factory(optimizer, T_max=max(steps, 1))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
