"""Sub-networks of a trained supernet, scored from its shared weights after training.

A space with a ground-truth table (NAS-Bench-201) has its sampled sub-networks ranked against
the table (Kendall tau of accuracy and of Pareto ranks, PRP-NAS section 3.1); an elastic space
with no ground truth (``ofa_mbv3``) reports the accuracy of its max, min and sampled
sub-networks instead. ``train.py`` calls these after ``fit``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from search.benchmarks import NB201Table
from search.evaluators.subnet import SubnetEvaluator
from search.ranking import ranking_report
from search.spaces.base import canonical_json

log = logging.getLogger(__name__)


def evaluation_archs(space: Any, num_archs: int, arch_seed: int, ranked: bool) -> list:
    """The architectures scored after training.

    Ranked against a table: ``num_archs`` distinct uniform samples in the benchmark's string
    form (the records and the table lookups keep it). Otherwise the max and the min
    architecture, then the samples, as mappings.

    Raises:
        ValueError: an unranked evaluation on a space without ``max_arch`` / ``min_arch``.
    """
    sampled = space.sample_unique(np.random.default_rng(arch_seed), num_archs)
    if ranked:
        return [space.serialize(a) for a in sampled]
    missing = [m for m in ("max_arch", "min_arch") if not callable(getattr(space, m, None))]
    if missing:
        raise ValueError(
            f"space {space.name!r} has no {missing}: evaluation=ofa_mbv3 (no ground truth) and "
            "model=ofa need an elastic space (space=ofa_mbv3); NAS-Bench-201 spaces rank against "
            "the table with evaluation=nb201"
        )
    return [space.parse(a) for a in [space.max_arch(), space.min_arch(), *sampled]]


def score_archs(
    net: nn.Module,
    datamodule: Any,
    archs: Sequence,
    recal_batches: int | None,
    val_batches: int | None,
    seed: int,
    results_path: Path,
    device: torch.device,
) -> list[dict]:
    """Accuracy of ``archs`` from the shared weights, BN recalibrated, resumable (JSON lines)."""
    evaluator = SubnetEvaluator.from_datamodule(
        datamodule, recal_batches, val_batches, seed=seed, results_path=results_path, device=device
    )
    net.eval()
    return evaluator.evaluate(net, archs)


def rank_against_table(
    space: Any,
    module: Any,
    archs: list[str],
    results: list[dict],
    table_path: str | None,
    gt_metric: str,
    cost_metric: str | None,
) -> dict[str, Any]:
    """Correlate the shared-weight accuracy of ``archs`` with the benchmark's ground truth.

    A module with ``ranking_summary`` (PRP-NAS: alpha scores, selection, pruning) adds its own
    figures. Returns ``metrics`` (scalars), ``extras`` (the rest), ``rows`` and ``table_source``.
    """
    table = NB201Table.load(table_path)
    est = np.array([r["acc_top1"] for r in results])
    true = table.values(archs, gt_metric)
    cost = table.values(archs, cost_metric) if cost_metric else None
    report = ranking_report(est, true, cost)
    report["mean_subnet_acc"] = float(est.mean())
    extras = {}
    if hasattr(module, "ranking_summary"):
        extras = module.ranking_summary([space.parse(a) for a in archs], true, cost)
        report.update({k: v for k, v in extras.items() if isinstance(v, float)})
        extras = {k: v for k, v in extras.items() if not isinstance(v, float)}
    rows = [[a, r["acc_top1"], t, c] for a, r, t, c in zip(archs, results, true, cost, strict=True)]
    return {"metrics": report, "rows": rows, "table_source": table.source, "extras": extras}


def accuracy_spread(space_name: str, archs: list[dict], results: list[dict]) -> dict[str, Any]:
    """Accuracy of the max, min and sampled sub-networks (``archs`` from
    :func:`evaluation_archs`): their values, range and mean. A space with no ground-truth table
    has no ranking to correlate."""
    acc = [r["acc_top1"] for r in results]
    sampled = acc[2:]
    metrics = {
        "acc_top1_max_arch": acc[0],
        "acc_top1_min_arch": acc[1],
        "acc_top1_range": [min(acc), max(acc)],
        "mean_subnet_acc": float(np.mean(sampled)) if sampled else None,
        "n_archs": len(sampled),
    }
    log.info(
        "no ground truth for space %s: scored the max, the min and %d sampled sub-networks from "
        "the shared weights (BN recalibrated), no Kendall tau; max %.2f%%, min %.2f%%, mean %s",
        space_name,
        len(sampled),
        acc[0],
        acc[1],
        "n/a" if not sampled else f"{metrics['mean_subnet_acc']:.2f}%",
    )
    rows = [[canonical_json(a), r["acc_top1"]] for a, r in zip(archs, results, strict=True)]
    return {"metrics": metrics, "acc_top1_sampled": sampled, "rows": rows}
