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
