"""Accuracy of sub-networks from shared weights, with per-architecture BN recalibration."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


@torch.no_grad()
def recalibrate_bn(net: nn.Module, batches: Sequence[torch.Tensor]) -> None:
    """Re-estimate every BatchNorm's running statistics from ``batches`` (exact average).

    Shared BN statistics are a mix over all paths seen in training; each sub-network needs its
    own (the standard fix in SPOS, FairNAS and OFA). Momentum ``None`` makes the running
    estimate the plain mean over the batches.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    for x in batches:
        net(x)
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    net.eval()


@torch.no_grad()
def accuracy(
    net: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]
) -> dict[str, float]:
    """Top-1 accuracy (%) and mean cross-entropy of ``net`` in eval mode over ``batches``."""
    net.eval()
    correct = total = 0
    loss = 0.0
    for x, y in batches:
        logits = net(x)
        loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        total += len(y)
    return {"acc_top1": 100.0 * correct / total, "loss": loss / total}


class SubnetEvaluator:
    """Evaluates architectures from a supernet's shared weights, resumably.

    For every architecture: extract the standalone sub-network with its shared weights,
    recalibrate its BN statistics on a fixed set of training batches, measure top-1 accuracy on
    fixed validation batches. The supernet itself is left untouched. Each result is appended to
    ``results_path`` (JSON lines) as it finishes; a rerun skips what is already there, so a
    crash loses no finished evaluation.

    Args:
        recal_batches: input batches for BN recalibration (the same for every architecture).
        val_batches: (input, label) batches to score on.
        results_path: JSON-lines file of finished evaluations, or None for no persistence.
    """

    def __init__(
        self,
        recal_batches: Sequence[torch.Tensor],
        val_batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
        results_path: str | Path | None = None,
    ) -> None:
        self.recal_batches = list(recal_batches)
        self.val_batches = list(val_batches)
        self.results_path = Path(results_path) if results_path is not None else None

    def load_done(self) -> dict[str, dict]:
        """Finished results by arch string (empty if none yet)."""
        if self.results_path is None or not self.results_path.exists():
            return {}
        done = {}
        for line in self.results_path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done[rec["arch"]] = rec
        return done

    def evaluate_one(self, supernet: nn.Module, arch: str) -> dict[str, float]:
        sub = supernet.extract_subnet(arch)
        recalibrate_bn(sub, self.recal_batches)
        return accuracy(sub, self.val_batches)

    def evaluate(
        self, supernet: nn.Module, archs: Sequence[str], progress: bool = True
    ) -> list[dict]:
        """Results for ``archs`` in order, evaluating only those not finished before."""
        done = self.load_done()
        if done:
            log.info("resuming: %d of %d architectures already evaluated", len(done), len(archs))
        todo = [a for a in archs if a not in done]
        for arch in tqdm(todo, desc="evaluate sub-networks", disable=not progress):
            rec = {"arch": arch, **self.evaluate_one(supernet, arch)}
            done[arch] = rec
            if self.results_path is not None:
                self.results_path.parent.mkdir(parents=True, exist_ok=True)
                with self.results_path.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
        return [done[a] for a in archs]
