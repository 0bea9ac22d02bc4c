"""Single-path supernet training as a LightningModule: FairNAS strict fairness or SPOS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from lightning_modules.samplers import make_sampler


class SupernetModule(pl.LightningModule):
    """Trains a weight-sharing supernet one path at a time.

    With ``sampler="fairnas"`` each step follows FairNAS strict fairness (Chu et al., 2021;
    PRP-NAS section 3.2 step 1): m paths that together cover every candidate op of every edge
    once, their gradients accumulated, one optimizer update. With ``sampler="spos"`` each step
    trains one uniformly sampled path (the SPOS baseline).

    Args:
        supernet: any weight-sharing network of the :class:`search.spaces.Supernet` protocol
            (``decisions``, ``set_active``, ``extract_subnet``); paths are drawn over its
            ``decisions`` and activated as architecture mappings.
        optimizer: partial optimizer, completed with the parameters.
        scheduler: partial LR scheduler, completed with the optimizer and ``T_max`` = total
            optimizer steps of the fit (stepped every optimizer step); None for a constant LR.
        sampler: ``fairnas`` or ``spos``.
        grad_clip_norm: max gradient L2 norm per update (NAS-Bench-201 uses 5); None disables.
        probe_archs: architectures scored on the valid split at every validation (logged as
            ``val/acc``, their mean top-1); shared BN statistics, no recalibration.
        seed: seed of the path sampler's generator (saved in checkpoints for exact resume).
        channels_last: NHWC memory format (about 20% faster convolutions on x86 CPUs).
    """

    # Constructor arguments of subclasses that are objects, not hyperparameters.
    hparams_ignore: tuple[str, ...] = ()

    def __init__(
        self,
        supernet: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        sampler: str = "fairnas",
        grad_clip_norm: float | None = 5.0,
        probe_archs: list[str | dict[str, Any]] | None = None,
        seed: int = 0,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        # FairNAS makes m backward passes per optimizer update, each path's graph freed before
        # the next, so the update must be driven by hand.
        self.automatic_optimization = False
        # Plain data: Hydra may hand in ListConfig / DictConfig, which checkpoints cannot
        # safely load.
        probe_archs = [a if isinstance(a, str) else dict(a) for a in probe_archs or []]
        self.save_hyperparameters(
            ignore=["supernet", "optimizer", "scheduler", *self.hparams_ignore]
        )
        # a subclass's frame hands Lightning the Hydra container again: store the plain copy
        self.hparams["probe_archs"] = probe_archs
        self.net = supernet
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.decision_labels = list(supernet.decisions)
        self.sampler = make_sampler(
            sampler, list(supernet.decisions.values()), np.random.default_rng(seed)
        )
        self.probe_archs = probe_archs
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        num_classes = supernet.num_classes
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(self.net.parameters())
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        total = max(1, int(self.trainer.estimated_stepping_batches))
        return {
            "optimizer": optimizer,
            "lr_scheduler": self.scheduler_factory(optimizer, T_max=total),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=self.memory_format))

    def _weight_optimizer(self):
        """The optimizer of the network's weights (the first, where a subclass adds more)."""
        opts = self.optimizers()
        return opts[0] if isinstance(opts, list) else opts

    def _weight_update(self, opt) -> None:
        """Clip the accumulated gradients, step the weights and the LR schedule."""
        if self.hparams.grad_clip_norm is not None:
            self.clip_gradients(
                opt, gradient_clip_val=self.hparams.grad_clip_norm, gradient_clip_algorithm="norm"
            )
        opt.step()
        sched = self.lr_schedulers()
        if sched is not None:
            sched.step()

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        opt = self._weight_optimizer()
        opt.zero_grad(set_to_none=True)
        paths = self.sampler.paths()
        total = torch.zeros((), device=x.device)
        for choices in paths:
            self.net.set_active(dict(zip(self.decision_labels, choices, strict=True)))
            logits = self(x)
            loss = nn.functional.cross_entropy(logits, y)
            self.manual_backward(loss)  # gradients of all m paths accumulate in .grad
            total += loss.detach()
            self.train_acc.update(logits.detach(), y)
        self._weight_update(opt)
        mean_loss = total / len(paths)
        self.log("train/loss", mean_loss, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        self.log("train/lr", opt.param_groups[0]["lr"], on_step=True, on_epoch=False)
        return mean_loss

    # ------------------------------------------------------------------ validation
    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        for arch in self.probe_archs:
            self.net.set_active(arch)
            self.val_acc.update(self(x), y)

    def on_validation_epoch_end(self) -> None:
        if self.probe_archs:
            self.log("val/acc", self.val_acc.compute() * 100, prog_bar=True, sync_dist=True)
            self.val_acc.reset()

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["sampler_rng"] = self.sampler.rng.bit_generator.state

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "sampler_rng" in checkpoint:
            self.sampler.rng.bit_generator.state = checkpoint["sampler_rng"]
