"""Pareto rank-preserving supernet training (PRP-NAS, Algorithm 1: steps 1-3) as a LightningModule.

Reading of Algorithm 1 (section 3.2) used here, where the text leaves a choice:

- Step 1 is FairNAS strict fairness for ``fair_epochs`` epochs (the parent class); with
  ``fair_epochs=0`` the module starts from a step-1 run's weights (``init_from``).
- Step 2, every later epoch: each mini-batch trains the single path of the argmax alpha on
  every decision with cross-entropy (a weight step; alpha takes no gradient). At the end of
  the epoch, ``n_sampled`` distinct sub-networks are drawn from the ops still alive, never
  from ``heldout_archs`` (the architectures the ranking is scored on), their objectives come
  from ``rank_source`` (any search ``Evaluator``: the NAS-Bench-201 table by default, a
  measured device or the step-1 supernet's accuracy elsewhere), their Pareto ranks are peeled
  as in eq. 1, and one alpha step minimises the listwise loss plus the hinge loss of eq. 2
  (:mod:`lightning_modules.prp.losses`; the weights take no gradient).
- Step 3 after the alpha step, on the schedule ``prune_start_epoch`` / ``prune_every``: HVI
  pruning (eq. 3, :mod:`lightning_modules.prp.pruning`) on the same sample. The supernet is
  restricted to the surviving ops (their modules stay, unused, so checkpoints keep one shape),
  the alpha of a pruned op is frozen and masked out, and each event is logged.

The alpha step is owed once per finished Pareto epoch and paid in ``on_train_epoch_end``; a
run resumed from a checkpoint written before it pays it at the next epoch start, so resuming
gives the same alphas, pruning and weights as an unbroken run.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_modules.prp.losses import (
    listwise_loss,
    op_counts,
    pareto_hinge_loss,
    path_scores,
    top_n_weights,
)
from lightning_modules.prp.pruning import op_hvi, select_by_hvi, surviving_ops
from lightning_modules.supernet import SupernetModule
from search.evaluators.supernet import load_supernet_weights
from search.objectives import parse_objectives
from search.pareto import pareto_ranks, to_minimization
from search.spaces.base import canonical_json

log = logging.getLogger(__name__)


class PRPModule(SupernetModule):
    """FairNAS, then Pareto-rank training of alpha with HVI pruning (PRP-NAS Alg. 1).

    Args:
        supernet: a :class:`search.spaces.Supernet` with ``restrict(decisions)`` for pruning.
        optimizer: partial optimizer of the weights (SGD lr 0.01, momentum 0.9 in the paper).
        scheduler: partial LR scheduler of the weights, or None.
        rank_source: a search ``Evaluator`` giving the ground-truth objectives of an arch.
        objectives: two or more ``{metric, mode, device}`` entries read from ``rank_source``.
        alpha_optimizer: partial optimizer of alpha.
        fair_epochs: ``N_f``, FairNAS epochs before Pareto training (0 with ``init_from``).
        n_sampled: ``n``, sub-networks sampled per alpha step.
        alpha_iters: alpha updates per Pareto epoch, each on a fresh sample (the paper: 1; a
            CPU budget with few epochs needs more, see docs/training.md).
        top_n: ``N``, size of the top sets whose op counts eq. 2 compares.
        margin: ``m`` of eq. 2.
        listwise_weight: weight of the listwise loss.
        hinge_weight: weight of the hinge loss.
        rank_temperature: temperature of the softmax over negated true ranks.
        count_temperature: temperature of the soft top-N membership of predicted counts.
        prune: whether step 3 runs.
        prune_start_epoch: first Pareto epoch (0-based) that prunes.
        prune_every: prune every this many Pareto epochs.
        prune_select: sub-networks selected by HVI whose ops survive (the paper's ``n``).
        min_ops: never leave fewer ops than this on a decision (kept by highest alpha).
        ref_samples: sub-networks pre-sampled once for the HVI reference point (their worst
            value on every objective, a low-accuracy high-latency corner).
        heldout_archs: architectures never sampled for the alpha loss (the scored ones).
        selection_threshold: final selection keeps the ops within this alpha of the best.
        init_from: a step-1 checkpoint whose ``net.*`` weights start this run.
        max_draws: draws allowed per sample before giving up (unmeasured or held-out archs).
        **kwargs: passed to :class:`SupernetModule` (sampler, grad clip, probes, seed, ...).
    """

    # objects, and Hydra containers that a weights_only load refuses (objectives: stored plain)
    hparams_ignore = ("rank_source", "alpha_optimizer", "heldout_archs", "objectives")

    def __init__(
        self,
        supernet: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        rank_source: Any,
        objectives: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        alpha_optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        fair_epochs: int = 20,
        n_sampled: int = 50,
        alpha_iters: int = 1,
        top_n: int = 10,
        margin: float = 1.0,
        listwise_weight: float = 1.0,
        hinge_weight: float = 1.0,
        rank_temperature: float = 1.0,
        count_temperature: float = 0.1,
        prune: bool = True,
        prune_start_epoch: int = 0,
        prune_every: int = 1,
        prune_select: int = 50,
        min_ops: int = 1,
        ref_samples: int = 50,
        heldout_archs: Sequence[Mapping[str, Any]] = (),
        selection_threshold: float = 0.05,
        init_from: str | None = None,
        max_draws: int = 100_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(supernet, optimizer, scheduler, **kwargs)
        if (
            fair_epochs < 0
            or not 0 < top_n <= n_sampled
            or min(prune_every, min_ops, alpha_iters) < 1
        ):
            raise ValueError(
                "need fair_epochs >= 0, 0 < top_n <= n_sampled, prune_every, min_ops and "
                f"alpha_iters >= 1; got {fair_epochs}, {top_n}, {n_sampled}, {prune_every}, "
                f"{min_ops}, {alpha_iters}"
            )
        self.rank_source = rank_source
        self.objectives = parse_objectives(objectives)
        self.hparams["objectives"] = [dataclasses.asdict(o) for o in self.objectives]
        rank_source.check(self.objectives, [])
        self.alpha_optimizer_factory = alpha_optimizer
        self.choices = [tuple(c) for c in supernet.decisions.values()]
        width = max(len(c) for c in self.choices)
        self.alpha = nn.Parameter(torch.zeros(len(self.choices), width))
        alive = torch.zeros(len(self.choices), width, dtype=torch.bool)
        for j, c in enumerate(self.choices):
            alive[j, : len(c)] = True
        self.register_buffer("alive", alive)
        self.heldout = {canonical_json(a) for a in heldout_archs}
        self.prp_rng = np.random.default_rng([self.hparams.seed, 1])
        self.truth: dict[str, np.ndarray | None] = {}  # canonical arch -> objectives (min form)
        self.alpha_steps = 0
        self.prune_events: list[dict[str, Any]] = []
        self.ref_point: np.ndarray | None = None
        if init_from is not None:
            load_supernet_weights(self.net, init_from)
            log.info("initialised the supernet from the step-1 checkpoint %s", init_from)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        weights = super().configure_optimizers()
        alpha_opt = self.alpha_optimizer_factory([self.alpha])
        if "lr_scheduler" in weights:
            return [weights["optimizer"], alpha_opt], [weights["lr_scheduler"]]
        return [weights["optimizer"], alpha_opt]

    @property
    def in_pareto_phase(self) -> bool:
        return self.current_epoch >= self.hparams.fair_epochs

    def argmax_arch(self) -> dict[str, Any]:
        """The path of the highest alive alpha on every decision."""
        best = self.alpha.detach().masked_fill(~self.alive, float("-inf")).argmax(1)
        return {
            label: c[int(k)]
            for label, c, k in zip(self.decision_labels, self.choices, best, strict=True)
        }

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        if not self.in_pareto_phase:
            return super().training_step(batch, batch_idx)
        x, y = batch
        opt = self._weight_optimizer()
        opt.zero_grad(set_to_none=True)
        self.net.set_active(self.argmax_arch())
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.manual_backward(loss)
        self._weight_update(opt)
        self.train_acc.update(logits.detach(), y)
        self.log("train/loss", loss.detach(), prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss.detach()

    # ------------------------------------------------------------------ alpha steps
    def on_train_epoch_start(self) -> None:
        self._pay_alpha_steps(finished_epochs=self.current_epoch)

    def on_train_epoch_end(self) -> None:
        self._pay_alpha_steps(finished_epochs=self.current_epoch + 1)

    def _pay_alpha_steps(self, finished_epochs: int) -> None:
        while self.alpha_steps < finished_epochs - self.hparams.fair_epochs:
            self.alpha_step()

    def objectives_of(self, arch: dict[str, Any]) -> np.ndarray | None:
        """Ground-truth objectives of ``arch`` in minimisation form (cached); None if any is
        unmeasured."""
        key = canonical_json(arch)
        if key not in self.truth:
            metrics = self.rank_source.evaluate(arch, self.objectives)
            values = [metrics.get(o.key) for o in self.objectives]
            self.truth[key] = (
                None
                if any(v is None for v in values)
                else to_minimization(np.array([values], float), [o.mode for o in self.objectives])[
                    0
                ]
            )
        return self.truth[key]

    def sample_measured(self, n: int) -> tuple[list[dict[str, Any]], np.ndarray]:
        """``n`` distinct alive, measured, not held-out sub-networks and their objectives."""
        archs, rows, seen = [], [], set()
        for _ in range(self.hparams.max_draws):
            if len(archs) == n:
                break
            arch = self.net.sample(self.prp_rng)
            key = canonical_json(arch)
            if key in seen or key in self.heldout:
                continue
            seen.add(key)
            f = self.objectives_of(arch)
            if f is not None:
                archs.append(arch)
                rows.append(f)
        if len(archs) < n:
            raise RuntimeError(
                f"found only {len(archs)} of n_sampled={n} distinct measured sub-networks outside "
                f"the {len(self.heldout)} held-out ones in {self.hparams.max_draws} draws over the "
                f"alive ops {self.alive_ops()}; lower n_sampled or prune less"
            )
        return archs, np.stack(rows)

    def choice_indices(self, archs: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        """(A, L) index of each arch's choice on each decision."""
        rows = [
            [c.index(a[label]) for label, c in zip(self.decision_labels, self.choices, strict=True)]
            for a in archs
        ]
        return torch.tensor(rows, dtype=torch.long, device=self.alpha.device)

    def alpha_losses(self, choices: torch.Tensor, ranks: np.ndarray) -> dict[str, torch.Tensor]:
        """Listwise, hinge (eq. 2) and total alpha loss of a ranked sample."""
        hp = self.hparams
        scores = path_scores(self.alpha, choices)
        true_ranks = torch.as_tensor(ranks, dtype=scores.dtype, device=scores.device)
        width = self.alpha.shape[1]
        g = op_counts(choices, top_n_weights(scores, hp.top_n, hp.count_temperature), width)
        g_hat = op_counts(choices, top_n_weights(-true_ranks, hp.top_n), width)
        listwise = listwise_loss(scores, true_ranks, hp.rank_temperature)
        hinge = pareto_hinge_loss(self.alpha, g, g_hat, hp.margin, self.alive)
        total = hp.listwise_weight * listwise + hp.hinge_weight * hinge
        return {"listwise": listwise, "hinge": hinge, "total": total}

    def alpha_step(self, optimizer: torch.optim.Optimizer | None = None) -> dict[str, float]:
        """One Pareto epoch's alpha training (step 2), then HVI pruning (step 3).

        ``alpha_iters`` updates, each on a fresh ranked sample; pruning uses the last sample.
        ``optimizer`` defaults to the module's alpha optimizer (given: the module runs without
        a trainer, as the alpha-ranking benchmark does). Returns the last losses.
        """
        hp = self.hparams
        if self.ref_point is None:
            _, F_ref = self.sample_measured(hp.ref_samples)
            self.ref_point = F_ref.max(0)
        if optimizer is None:
            opts = self.optimizers()
            optimizer = opts[1] if isinstance(opts, list) else opts
        for _ in range(hp.alpha_iters):
            archs, F = self.sample_measured(hp.n_sampled)
            ranks = pareto_ranks(F)
            choices = self.choice_indices(archs)
            optimizer.zero_grad(set_to_none=True)
            losses = self.alpha_losses(choices, ranks)
            if self._trainer is not None:
                self.manual_backward(losses["total"])
            else:
                losses["total"].backward()
            with torch.no_grad():  # pruned ops keep their alpha
                self.alpha.grad.masked_fill_(~self.alive, 0.0)
            optimizer.step()
        pareto_epoch = self.alpha_steps
        self.alpha_steps += 1
        last = {f"prp/{k}_loss": float(v.detach()) for k, v in losses.items()}
        if self._trainer is not None:
            self.log_dict(last, on_step=False, on_epoch=True)
            self._log_alpha()
        if (
            hp.prune
            and pareto_epoch >= hp.prune_start_epoch
            and (pareto_epoch - hp.prune_start_epoch) % hp.prune_every == 0
        ):
            self.prune(F, choices.cpu().numpy(), ranks)
        return last

    # ------------------------------------------------------------------ pruning
    def prune(self, F: np.ndarray, choices: np.ndarray, ranks: np.ndarray) -> dict[str, Any]:
        """HVI pruning (eq. 3) of the ops no HVI-selected sub-network uses."""
        alive = self.alive.cpu().numpy()
        hvi = op_hvi(F, choices, ranks, self.ref_point, alive)
        selected = select_by_hvi(hvi, choices, ranks, self.hparams.prune_select)
        keep = surviving_ops(choices, selected, alive)
        alpha = self.alpha.detach().cpu().numpy()
        for j in range(len(keep)):  # top up to min_ops by alpha
            short = self.hparams.min_ops - keep[j].sum()
            if short > 0:
                extra = [k for k in np.argsort(-alpha[j]) if alive[j, k] and not keep[j, k]]
                keep[j, extra[:short]] = True
        removed = {
            label: [c[k] for k in range(len(c)) if alive[j, k] and not keep[j, k]]
            for j, (label, c) in enumerate(zip(self.decision_labels, self.choices, strict=True))
        }
        self._apply_alive(torch.as_tensor(keep, device=self.alive.device))
        event = {
            "epoch": int(self.current_epoch) if self._trainer is not None else self.alpha_steps,
            "removed": {k: v for k, v in removed.items() if v},
            "selected": len(selected),
            "alive": self.alive_ops(),
        }
        self.prune_events.append(event)
        n_removed = sum(len(v) for v in removed.values())
        log.info("HVI pruning at epoch %d removed %d ops: %s", event["epoch"], n_removed, removed)
        if self._trainer is not None:
            self.log("prp/alive_ops", float(self.alive.sum()), on_step=False, on_epoch=True)
        return event

    def _apply_alive(self, alive: torch.Tensor) -> None:
        self.alive.copy_(alive)
        self.net.restrict(self.alive_ops())

    def alive_ops(self) -> dict[str, list[Any]]:
        """Decision label -> the ops still alive."""
        return {
            label: [c[k] for k in range(len(c)) if bool(self.alive[j, k])]
            for j, (label, c) in enumerate(zip(self.decision_labels, self.choices, strict=True))
        }

    # ------------------------------------------------------------------ results
    def scores(self, archs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Predicted Pareto score of architectures (any ops, pruned ones included).

        A pruned op's alpha is replaced by the lowest alive alpha of its decision minus one,
        so an architecture with a pruned op scores below its alive-only variants.
        """
        alpha = self.alpha.detach().clone()
        floor = alpha.masked_fill(~self.alive, float("inf")).min(1, keepdim=True).values - 1
        alpha = torch.where(self.alive, alpha, floor.expand_as(alpha))
        return path_scores(alpha, self.choice_indices(archs)).cpu().numpy()

    def final_selection(self, threshold: float | None = None) -> dict[str, list[Any]]:
        """Per decision, the alive ops whose alpha is within ``threshold`` of the best."""
        threshold = self.hparams.selection_threshold if threshold is None else threshold
        out = {}
        for j, (label, c) in enumerate(zip(self.decision_labels, self.choices, strict=True)):
            a = self.alpha.detach()[j, : len(c)].cpu().numpy()
            ok = self.alive[j, : len(c)].cpu().numpy()
            best = a[ok].max()
            out[label] = [c[k] for k in np.argsort(-a) if ok[k] and a[k] >= best - threshold]
        return out

    def ranking_summary(
        self, archs: Sequence[Mapping[str, Any]], true_acc: np.ndarray, cost: np.ndarray
    ) -> dict[str, Any]:
        """What train.py adds to ``summary.json`` (:func:`lightning_modules.prp.report.summary`)."""
        from lightning_modules.prp.report import summary

        return summary(self, archs, true_acc, cost)

    def _log_alpha(self) -> None:
        logger = self.logger
        if logger is not None and type(logger).__name__ == "WandbLogger":
            from lightning_modules.prp.report import log_alpha_heatmap

            log_alpha_heatmap(self, logger)

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["prp"] = {
            "rng": self.prp_rng.bit_generator.state,
            "alpha_steps": self.alpha_steps,
            "prune_events": self.prune_events,
            "ref_point": None if self.ref_point is None else self.ref_point.tolist(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("prp")
        if state is None:
            return
        self.prp_rng.bit_generator.state = state["rng"]
        self.alpha_steps = state["alpha_steps"]
        self.prune_events = list(state["prune_events"])
        self.ref_point = None if state["ref_point"] is None else np.array(state["ref_point"])
        # Lightning loads the state dict after this hook; the supernet must be restricted first
        self._apply_alive(checkpoint["state_dict"]["alive"].to(self.alive.device))
