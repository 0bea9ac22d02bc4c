"""Accuracy of sub-networks from shared weights, with per-architecture BN recalibration."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from hardware.base import arch_cache_key

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


def fingerprint(net: nn.Module, batches: Sequence[torch.Tensor] = ()) -> str:
    """Short stable hash of a network's weights and buffers (and of evaluation inputs).

    Stored with every evaluation so that a resumed evaluation never mixes in results that
    other weights (another training run) or other recalibration / validation data produced.
    """
    h = hashlib.sha1()
    tensors = [t for _, t in sorted(net.state_dict().items())] + list(batches)
    for t in tensors:
        h.update(t.detach().to("cpu", copy=False).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


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
        device: where sub-networks are scored (the batches are moved there once); None keeps
            the supernet's own device. Lightning moves a module back to the CPU after
            ``fit``, so train.py passes the trainer's device here.
    """

    def __init__(
        self,
        recal_batches: Sequence[torch.Tensor],
        val_batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
        results_path: str | Path | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        self.device = torch.device(device) if device is not None else None
        self.recal_batches = [self._to(x) for x in recal_batches]
        self.val_batches = [(self._to(x), self._to(y)) for x, y in val_batches]
        self.results_path = Path(results_path) if results_path is not None else None

    @classmethod
    def from_datamodule(
        cls,
        datamodule: Any,
        recal_batches: int | None,
        val_batches: int | None,
        seed: int = 0,
        results_path: str | Path | None = None,
        device: torch.device | str | None = None,
    ) -> SubnetEvaluator:
        """Recalibration batches from ``datamodule.recalibration_dataloader(seed)`` and scoring
        batches from its ``val_dataloader()`` (``None``: all of them)."""
        recal = [x for x, _ in _take(datamodule.recalibration_dataloader(seed=seed), recal_batches)]
        val = list(_take(datamodule.val_dataloader(), val_batches))
        return cls(recal, val, results_path=results_path, device=device)

    def _to(self, t: torch.Tensor) -> torch.Tensor:
        return t if self.device is None else t.to(self.device)

    def load_done(self, key: str | None = None) -> dict[str, dict]:
        """Finished results by :func:`~hardware.base.arch_cache_key` (empty if none yet).

        With ``key`` (a :func:`fingerprint`), results recorded under another key (other
        weights or other evaluation data) are ignored, with a warning.
        """
        if self.results_path is None or not self.results_path.exists():
            return {}
        done, stale = {}, 0
        for line in self.results_path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                if key is not None and rec.get("key") != key:
                    stale += 1
                    continue
                done[arch_cache_key(rec["arch"])] = rec
        if stale:
            log.warning(
                "ignoring %d results in %s from other weights or evaluation data",
                stale,
                self.results_path,
            )
        return done

    def evaluate_one(self, supernet: nn.Module, arch: str | Mapping[str, Any]) -> dict[str, float]:
        """Accuracy of one architecture from a :class:`~search.spaces.Supernet`'s weights."""
        sub = supernet.extract_subnet(arch)
        recalibrate_bn(sub, self.recal_batches)
        return accuracy(sub, self.val_batches)

    def evaluate(
        self,
        supernet: nn.Module,
        archs: Sequence[str | Mapping[str, Any]],
        progress: bool = True,
    ) -> list[dict]:
        """Results for ``archs`` (serialized strings or mappings) in order, evaluating only
        those not finished before."""
        if self.device is not None:
            supernet = supernet.to(self.device)
        key = fingerprint(supernet, [*self.recal_batches, *(x for x, _ in self.val_batches)])
        done = self.load_done(key)
        if done:
            log.info("resuming: %d of %d architectures already evaluated", len(done), len(archs))
        todo = [a for a in archs if arch_cache_key(a) not in done]
        for arch in tqdm(todo, desc="evaluate sub-networks", disable=not progress):
            plain = arch if isinstance(arch, str) else dict(arch)
            rec = {"arch": plain, **self.evaluate_one(supernet, arch), "key": key}
            done[arch_cache_key(arch)] = rec
            if self.results_path is not None:
                self.results_path.parent.mkdir(parents=True, exist_ok=True)
                with self.results_path.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
        return [done[arch_cache_key(a)] for a in archs]


def _take(loader, n: int | None):
    for i, batch in enumerate(loader):
        if n is not None and i >= n:
            return
        yield batch
