"""The family search's summary (per processor: members, ranges, hypervolume) and front plot."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from search.dynamic_ofa.family import ProcessorResult, family_hypervolume  # noqa: E402


def processor_summary(r: ProcessorResult) -> dict[str, Any]:
    """JSON-ready figures of one processor's family."""
    acc = [lv["acc_top1"] for lv in r.levels]
    lat = [lv["latency_ms"] for lv in r.levels]
    ev = np.array(list(r.evaluated.values()), dtype=float).reshape(-1, 2)
    fam = np.array(
        [[lv["search_acc_top1"], lv["search_latency_ms"]] for lv in r.levels], dtype=float
    ).reshape(-1, 2)
    front = np.array([r.evaluated[k] for k in r.front], dtype=float).reshape(-1, 2)
    hv, box = family_hypervolume({"family": fam, "front": front, "evaluated": ev})
    return {
        "n_members": len(r.levels),
        "acc_top1_range": [min(acc), max(acc)] if acc else None,
        "latency_ms_range": [min(lat), max(lat)] if lat else None,
        "levels": r.levels,
        "n_candidates": len(r.selected),
        "candidates_left_out": r.dropped,
        "n_parents": len(r.parents),
        "alg1_calls": r.alg1_calls,
        "n_alg1_exhausted": sum(1 for c in r.alg1_calls if "exhausted" in c),
        "n_evaluated": len(r.evaluated),
        "front_size": len(r.front),
        "refine": r.refine,
        # search-time values (the same source for all three), one normalisation per processor
        "hypervolume_family": hv.get("family", 0.0),
        "hypervolume_front": hv.get("front", 0.0),
        "hv_box": box,
        "device": r.device,
        "computed": r.computed,
    }


def plot_family(results: Mapping[str, ProcessorResult], path: Path) -> Path:
    """Per processor: every evaluated sub-network, the front, and the family as re-measured."""
    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4.2), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items(), strict=True):
        ev = np.array(list(r.evaluated.values()), dtype=float).reshape(-1, 2)
        ax.scatter(ev[:, 1], ev[:, 0], s=8, alpha=0.4, color="grey", label="evaluated")
        fr = np.array([r.evaluated[k] for k in r.front], dtype=float).reshape(-1, 2)
        fr = fr[np.argsort(fr[:, 1])]
        ax.step(fr[:, 1], fr[:, 0], where="post", color="crimson", lw=1, label="front (search)")
        lv = np.array([[x["latency_ms"], x["acc_top1"]] for x in r.levels]).reshape(-1, 2)
        ax.plot(lv[:, 0], lv[:, 1], "s-", color="navy", ms=5, label="family (re-measured)")
        for x in r.levels:
            ax.annotate(str(x["level"]), (x["latency_ms"], x["acc_top1"]), fontsize=8)
        ax.set_xlabel(f"latency_ms ({name})")
        ax.set_ylabel("acc_top1 (%)")
        ax.set_title(f"{name}: {len(r.levels)} levels, {len(r.evaluated)} evaluated")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def log_family(logger: Any, per: Mapping[str, Mapping[str, Any]], plot: Path) -> None:
    """Scalars per processor to a Lightning logger; on W&B also the front image and a table."""
    scalars = {
        f"family/{n}/{k}": v
        for n, p in per.items()
        for k, v in p.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    logger.log_metrics(scalars)
    if type(logger).__name__ != "WandbLogger":
        return
    logger.log_image("family/front", images=[str(plot)])
    columns = ["processor", "level", "arch_id", "acc_top1", "latency_ms", "search_acc_top1",
               "search_latency_ms"]  # fmt: skip
    rows = [[n, *(lv[c] for c in columns[1:])] for n, p in per.items() for lv in p["levels"]]
    logger.log_table("family/levels", columns=columns, data=rows)
