"""Exit policies and measured early-exit inference.

Two policies decide where a sample leaves:

* the *ideal* policy of the HADAS search (section IV-C): a sample leaves at the first exit that
  classifies it correctly, else runs to the final classifier; it needs the labels, so it scores
  designs, it cannot run deployed;
* *confidence thresholds*, the deployable runtime controllers: leave at the first exit whose
  max-softmax probability reaches a threshold, or whose prediction entropy falls to one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from search.spaces.exits.network import MultiExitNetwork

CONFIDENCES = ("max_softmax", "entropy")


def confidence_rule(kind: str, threshold: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """``logits -> bool`` per sample: leave when confident.

    Args:
        kind: ``max_softmax`` (leave when the top probability is >= ``threshold``) or
            ``entropy`` (leave when the prediction entropy in nats is <= ``threshold``).
        threshold: the confidence threshold.
    """
    if kind == "max_softmax":
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"a max-softmax threshold is a probability, got {threshold}")
        return lambda z: z.softmax(-1).amax(-1) >= threshold
    if kind == "entropy":
        if threshold < 0:
            raise ValueError(f"an entropy threshold is >= 0 nats, got {threshold}")

        def low_entropy(z: torch.Tensor) -> torch.Tensor:
            logp = z.log_softmax(-1)
            return -(logp.exp() * logp).sum(-1) <= threshold

        return low_entropy
    raise ValueError(f"unknown confidence {kind!r}; valid: {list(CONFIDENCES)}")


def ideal_exit_indices(correct: np.ndarray) -> np.ndarray:
    """Exit of every sample under the ideal policy.

    Args:
        correct: (E, n) bool, whether exit e (in order, active exits only) is right on sample n.

    Returns:
        (n,) int: the first exit that is right, ``E`` (the final classifier) where none is.
    """
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 2:
        raise ValueError(f"need an (exits, samples) matrix, got shape {correct.shape}")
    n_exits = correct.shape[0]
    if n_exits == 0:
        return np.zeros(correct.shape[1], dtype=int)
    first = correct.argmax(0)
    return np.where(correct.any(0), first, n_exits)


@torch.no_grad()
def run_early_exit(
    net: MultiExitNetwork,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    leave: Callable[[torch.Tensor], torch.Tensor],
    active: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Accuracy, share of samples per exit and wall-clock latency of real early exit.

    Every batch goes through :meth:`MultiExitNetwork.early_exit`; the time is that of those
    calls only (the batch size of ``batches`` is the deployment batch: 1 for per-sample
    latency).

    Returns:
        ``acc_top1`` (%), ``exit_share`` (per active exit, then the final classifier),
        ``latency_ms`` (wall time per sample), ``mean_blocks_run``, ``exit_index`` (per sample,
        for energy models), ``n``.
    """
    net.eval()
    active = net.positions if active is None else tuple(sorted(active))
    exits, correct, blocks = [], [], []
    elapsed = 0.0
    for x, y in batches:
        start = time.perf_counter()
        out = net.early_exit(x, leave, active)
        elapsed += time.perf_counter() - start
        exits.append(out.exit_index.cpu().numpy())
        correct.append((out.logits.argmax(-1) == y).cpu().numpy())
        blocks.append(out.blocks_run.cpu().numpy())
    exit_index = np.concatenate(exits)
    n = len(exit_index)
    if n == 0:
        raise ValueError("early-exit inference got no samples")
    return {
        "acc_top1": 100.0 * float(np.concatenate(correct).mean()),
        "exit_share": (np.bincount(exit_index, minlength=len(active) + 1) / n).tolist(),
        "latency_ms": 1000.0 * elapsed / n,
        "mean_blocks_run": float(np.concatenate(blocks).mean()),
        "exit_index": exit_index.tolist(),
        "active": list(active),
        "n": n,
    }


def _confidence_values(kind: str, z: torch.Tensor) -> torch.Tensor:
    logp = z.log_softmax(-1)
    if kind == "max_softmax":
        return logp.exp().amax(-1)
    return -(logp.exp() * logp).sum(-1)  # entropy (nats)


@torch.no_grad()
def calibrate_threshold(
    net: MultiExitNetwork,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    kind: str,
    active: Sequence[int],
    max_accuracy_drop: float = 1.0,
    grid: int = 41,
) -> dict[str, Any]:
    """The most permissive confidence threshold whose early-exit accuracy on ``batches`` stays
    within ``max_accuracy_drop`` points of the backbone's own.

    Every exit's logits are computed once; each candidate threshold (quantiles of the active
    exits' confidences, plus the never-exiting extreme) is simulated with the same
    :func:`confidence_rule` that :func:`run_early_exit` applies, and the one with the fewest
    blocks run per sample is kept (ties: the stricter). Calibrate on data the reported figures
    are not measured on.

    Returns:
        ``threshold``, and its simulated ``acc_top1``, ``mean_blocks_run``, ``static_acc``.
    """
    if kind not in CONFIDENCES:
        raise ValueError(f"unknown confidence {kind!r}; valid: {list(CONFIDENCES)}")
    net.eval()
    active = tuple(sorted(active))
    idx = [net.positions.index(p) for p in active]
    outs, ys = [], []
    for x, y in batches:
        z = net(x)
        outs.append([z[i] for i in idx] + [z[-1]])
        ys.append(y)
    logits = [torch.cat([o[k] for o in outs]) for k in range(len(idx) + 1)]
    y = torch.cat(ys)
    static_acc = 100.0 * (logits[-1].argmax(-1) == y).float().mean().item()
    never = 1.0 if kind == "max_softmax" else 0.0
    candidates = {never}
    if idx:
        conf = torch.cat([_confidence_values(kind, z) for z in logits[:-1]])
        candidates |= {float(v) for v in torch.quantile(conf, torch.linspace(0, 1, grid))}
    depth = [p + 1 for p in active] + [net.backbone.num_blocks]
    best = None
    for thr in sorted(candidates, reverse=kind == "max_softmax"):  # strict to permissive
        leave = confidence_rule(kind, min(max(thr, 0.0), 1.0) if kind == "max_softmax" else thr)
        exit_of = torch.full_like(y, len(idx))
        for k in reversed(range(len(idx))):
            exit_of = torch.where(leave(logits[k]), k, exit_of)
        pred = torch.stack([z.argmax(-1) for z in logits])[exit_of, torch.arange(len(y))]
        acc = 100.0 * (pred == y).float().mean().item()
        blocks = float(torch.tensor(depth, dtype=torch.float)[exit_of].mean())
        if acc >= static_acc - max_accuracy_drop and (best is None or blocks < best[2]):
            best = (thr, acc, blocks)
    thr, acc, blocks = best
    return {"threshold": thr, "acc_top1": acc, "mean_blocks_run": blocks, "static_acc": static_acc}
