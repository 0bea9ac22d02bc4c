"""Progressive shrinking of an elastic supernet (Once-for-All, Cai et al., ICLR 2020, section 3.2).

The phases (:mod:`lightning_modules.ofa.phases`) run in OFA's order: the largest network alone
(the teacher), then elastic kernel size, elastic depth, elastic expand ratio, with the input
resolution sampled per batch in every phase after the first. Each step samples ``n_subnets``
sub-networks within the phase's choices, sums their losses' gradients and makes one update
(OFA's ``dynamic_batch_size``).

Choices this module makes where OFA's text or code leaves one open:

- **In-place distillation** (Yu & Huang, slimmable networks; BigNAS), not OFA's frozen teacher
  snapshot: each step the largest sub-network, under the current shared weights, runs once under
  ``torch.no_grad`` on the step's batch at the step's resolution (OFA's teacher also sees the
  student's resized images), in train mode (batch statistics, as its students), and its logits
  are the soft targets of every sub-network of the step. The issue asks for it; it needs no second
  copy of the network in memory or in the checkpoint, so resume is exact with no extra state; the
  teacher keeps improving with the shared weights instead of freezing at the end of the first
  phase; and it costs the same one no-grad forward per step as a frozen teacher. The KD term is
  ``T^2 KL(softmax(teacher/T) || softmax(student/T))`` (:func:`distillation_kl`); at OFA's
  ``T = 1`` its gradient equals OFA's soft-target cross-entropy's. Loss = CE + kd_weight * KD;
  the largest phase has no teacher, so no KD.
- **Channel re-organisation** (OFA's ``re_organize_middle_weights``) runs exactly once, when the
  first expand epoch starts; a checkpoint records that it ran, so a run resumed past that point
  does not sort the channels again. The weight optimizer's state (SGD momentum) is cleared at the
  same moment: it is indexed by the old channel order, and OFA starts each phase with a fresh
  optimizer anyway.
- **One LR schedule over the whole fit** (the parent's cosine over all steps), where OFA restarts
  a cosine with a lower peak per phase: the CPU budgets here give each phase one or two epochs,
  and a decaying schedule already gives the later phases OFA's lower learning rates.

Resume mid-phase: the phase is a function of the epoch, the sampler's generator is checkpointed
(by the parent), the data order depends only on (seed, epoch), so a run killed at an epoch
boundary inside a phase and resumed with ``ckpt_path=`` equals an unbroken run.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_modules.multi_exit.losses import distillation_kl
from lightning_modules.ofa.phases import Phase, ShrinkingSampler, arch_stats, parse_phases
from lightning_modules.supernet import SupernetModule

log = logging.getLogger(__name__)

REQUIRED = ("max_arch", "min_arch", "set_active")  # what every phase needs from the supernet


class ProgressiveShrinkingModule(SupernetModule):
    """Trains an elastic supernet by progressive shrinking with in-place distillation.

    Args:
        supernet: an elastic supernet (:class:`search.spaces.ofa_mbv3.OFAMobileNetV3`): the
            ``Supernet`` protocol plus ``max_arch()``, ``min_arch()`` and, when an expand phase
            is scheduled, ``reorganize_channels()``.
        optimizer: partial optimizer, completed with the parameters.
        phases: the schedule, mappings with ``name`` (largest | kernel | depth | expand),
            ``epochs``, ``n_subnets`` and optional choice lists (``resolutions``,
            ``kernel_sizes``, ``depths``, ``expand_ratios``); their epochs must add up to the
            trainer's ``max_epochs``.
        scheduler: partial LR scheduler (``T_max`` = all optimizer steps of the fit), or None.
        kd_weight: weight of the distillation term in every phase after the largest.
        kd_temperature: KD temperature T.
        sampler: must be ``spos``: sub-networks are uniform within each phase's choices.
        **kwargs: passed to :class:`SupernetModule` (grad clip, probes, seed, channels_last).
    """

    hparams_ignore = ("phases",)  # stored as plain data below

    def __init__(
        self,
        supernet: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        phases: Sequence[Mapping[str, Any]],
        scheduler: Callable[..., Any] | None = None,
        kd_weight: float = 1.0,
        kd_temperature: float = 1.0,
        sampler: str = "spos",
        **kwargs: Any,
    ) -> None:
        if sampler != "spos":
            raise ValueError(
                f"sampler={sampler!r}: progressive shrinking samples sub-networks uniformly within "
                "each phase's choices; the only valid sampler is 'spos'"
            )
        if kd_weight < 0 or kd_temperature <= 0:
            raise ValueError(
                f"kd_weight={kd_weight} must be >= 0 and kd_temperature={kd_temperature} > 0"
            )
        self.phases: list[Phase] = parse_phases(list(phases))
        needs = REQUIRED + (
            ("reorganize_channels",) if any(p.name == "expand" for p in self.phases) else ()
        )
        missing = [m for m in needs if not callable(getattr(supernet, m, None))]
        if missing:
            raise ValueError(
                f"progressive shrinking (model=ofa) needs an elastic supernet with {list(needs)} "
                f"(e.g. space=ofa_mbv3); {type(supernet).__name__} lacks {missing}"
            )
        super().__init__(supernet, optimizer, scheduler, sampler=sampler, **kwargs)
        self.hparams["phases"] = [p.as_dict() for p in self.phases]
        self.max_arch = dict(supernet.max_arch())
        # The parent's uniform sampler is replaced by one restricted per phase; it keeps the
        # parent's generator, which the parent checkpoints.
        self.sampler = ShrinkingSampler(
            supernet.decisions, self.max_arch, self.phases, self.sampler.rng
        )
        self.phase_ends = list(itertools.accumulate(p.epochs for p in self.phases))
        self.channels_reorganized = False

    # ------------------------------------------------------------------ schedule
    @property
    def total_epochs(self) -> int:
        """Epochs of the whole schedule."""
        return self.phase_ends[-1]

    def phase_index_at(self, epoch: int) -> int:
        """Index of the phase that trains epoch ``epoch`` (0-based).

        Raises:
            ValueError: ``epoch`` is past the schedule.
        """
        for i, end in enumerate(self.phase_ends):
            if epoch < end:
                return i
        raise ValueError(f"epoch {epoch} is past the {self.total_epochs} epochs of the phases")

    @property
    def phase_index(self) -> int:
        return self.phase_index_at(self.current_epoch)

    @property
    def phase(self) -> Phase:
        return self.phases[self.phase_index]

    def on_fit_start(self) -> None:
        max_epochs = self.trainer.max_epochs
        if max_epochs != self.total_epochs:
            raise ValueError(
                f"trainer.max_epochs={max_epochs} but the phases {[p.name for p in self.phases]} "
                f"last {self.total_epochs} epochs ({[p.epochs for p in self.phases]}): set "
                f"trainer.max_epochs={self.total_epochs} or change the phases' epochs"
            )

    def on_train_epoch_start(self) -> None:
        phase = self.phase
        if phase.name == "expand" and not self.channels_reorganized:
            self.net.reorganize_channels()
            self._weight_optimizer().optimizer.state.clear()  # momentum of the old order
            self.channels_reorganized = True
            log.info("expand phase starts at epoch %d: channels re-organised", self.current_epoch)

    # ------------------------------------------------------------------ training
    def kd_loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """Mean ``T^2 KL(softmax(teacher/T) || softmax(student/T))`` over the batch."""
        return distillation_kl(student, teacher, self.hparams.kd_temperature).mean()

    def subnet_loss(
        self, logits: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(CE + kd_weight * KD, CE, KD)`` of one sub-network; KD is 0 with no teacher."""
        ce = nn.functional.cross_entropy(logits, y)
        if teacher is None:
            return ce, ce, torch.zeros((), device=logits.device)
        kd = self.kd_loss(logits, teacher)
        return ce + self.hparams.kd_weight * kd, ce, kd

    def teacher_logits(self, x: torch.Tensor, arch: Mapping[str, Any]) -> torch.Tensor:
        """Soft targets: the largest sub-network at ``arch``'s resolution, no gradient."""
        teacher = dict(self.max_arch)
        if "resolution" in arch:
            teacher["resolution"] = arch["resolution"]
        with torch.no_grad():
            self.net.set_active(teacher)
            return self(x).detach()

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        phase = self.phase
        opt = self._weight_optimizer()
        opt.zero_grad(set_to_none=True)
        archs = self.sampler.sample(self.phase_index, phase.n_subnets)
        distil = phase.name != "largest" and self.hparams.kd_weight > 0
        teacher = self.teacher_logits(x, archs[0]) if distil else None
        ce_sum = kd_sum = torch.zeros((), device=x.device)
        for arch in archs:
            self.net.set_active(arch)
            logits = self(x)
            loss, ce, kd = self.subnet_loss(logits, y, teacher)
            self.manual_backward(loss)  # gradients of all sub-networks accumulate in .grad
            ce_sum, kd_sum = ce_sum + ce.detach(), kd_sum + kd.detach()
            self.train_acc.update(logits.detach(), y)
        self._weight_update(opt)
        n = len(archs)
        ce_mean, kd_mean = ce_sum / n, kd_sum / n
        total = ce_mean + self.hparams.kd_weight * kd_mean
        self.log("train/loss", total, prog_bar=True)
        self.log_dict(
            {"train/ce": ce_mean, "train/kd": kd_mean, "train/phase": float(self.phase_index)}
        )
        stats = [arch_stats(a) for a in archs]
        self.log_dict({f"train/arch_{k}": float(np.mean([s[k] for s in stats])) for k in stats[0]})
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        self.log("train/lr", opt.param_groups[0]["lr"], on_step=True, on_epoch=False)
        return total

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["ofa"] = {"channels_reorganized": self.channels_reorganized}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if "ofa" in checkpoint:
            self.channels_reorganized = bool(checkpoint["ofa"]["channels_reorganized"])
