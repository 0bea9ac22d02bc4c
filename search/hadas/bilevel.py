"""The HADAS bi-level search (section IV): backbones outside, exits x DVFS inside.

The outer engine runs NSGA-II over NAS-Bench-201 backbones on their static metrics (accuracy
from the table, latency and energy on the Jetson TX2 from its edgegpu columns; eq. 3). The
backbones of its Pareto front (at most ``max_backbones``, spread evenly over accuracy) each get
an inner engine: exits trained on the frozen backbone, then NSGA-II over exit placement x DVFS
(``search.hadas.inner``). This is the paper's loop with one outer pass: HADAS re-ranks every
outer generation by the combined static and dynamic scores, which would train exits for every
generation's front; here the dynamic evaluation follows the finished outer search, so each
backbone's exits train once.

Every search is its own study in one archive (``hadas/outer``, ``hadas/inner/<backbone id>``)
and resumes from it; trained exit weights are kept by the exit pipeline, so a killed run
resumes where it stopped.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hardware.dvfs import DvfsModel
from search.algorithms import nsga2
from search.analytics import compare_fronts
from search.archive import Archive
from search.benchmarks import NB201Table
from search.evaluators import TableEvaluator
from search.hadas.inner import DynamicEvaluation, run_inner
from search.hadas.space import KeyedSpace
from search.pareto import non_dominated_mask
from search.runner import SearchCallback, run_search
from search.spaces.base import arch_id
from search.spaces.exits import (
    MultiExitNetwork,
    calibrate_threshold,
    confidence_rule,
    run_early_exit,
)
from search.spaces.nb201 import NB201Space, is_connected
from search.strict_json import strict_json
from search.tactics import FullSearch

log = logging.getLogger(__name__)


def _pick(front: list[Any], k: int, key: Callable[[Any], float]) -> list[Any]:
    """At most ``k`` members of ``front`` spread evenly over ``key`` (both ends included)."""
    front = sorted(front, key=key)
    if len(front) <= k:
        return front
    idx = np.unique(np.rint(np.linspace(0, len(front) - 1, k)).astype(int))
    return [front[i] for i in idx]


def _front(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Non-dominated points in (accuracy max, energy min)."""
    if not points:
        return []
    F = np.array([[-p["acc_top1"], p["energy_mj"]] for p in points])
    keep = non_dominated_mask(F)
    return sorted((p for p, k in zip(points, keep, strict=True) if k), key=lambda p: p["acc_top1"])


def at_equal_accuracy(
    static: Sequence[Mapping[str, Any]], dynamic: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """For each static point, the least-energy dynamic point at least as accurate."""
    out = []
    for s in static:
        ok = [d for d in dynamic if d["acc_top1"] >= s["acc_top1"]]
        if not ok:
            continue
        best = min(ok, key=lambda d: d["energy_mj"])
        out.append(
            {
                "static": dict(s),
                "dynamic": dict(best),
                "energy_saving": 1.0 - best["energy_mj"] / s["energy_mj"],
            }
        )
    return out


def _plot(static: list[dict], dynamic: list[dict], explored: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    if explored:
        ax.scatter(
            [p["energy_mj"] for p in explored], [p["acc_top1"] for p in explored],
            s=8, c="lightgrey", label="explored (b, x, f)",
        )  # fmt: skip
    for pts, style, label in ((static, "s-", "static front"), (dynamic, "o-", "dynamic front")):
        if pts:
            ax.plot([p["energy_mj"] for p in pts], [p["acc_top1"] for p in pts], style, label=label)
    ax.set_xlabel("energy per inference (mJ, TX2 via DVFS model)")
    ax.set_ylabel("valid accuracy (%); dynamic: ideal exit policy")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_hadas(
    prepare: Callable[[str], MultiExitNetwork],
    valid_batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    dvfs: DvfsModel,
    out_dir: str | Path,
    *,
    table: NB201Table | None = None,
    device: str = "edgegpu",
    accuracy_column: str = "acc_cifar10valid_valid",
    outer_budget: int = 100,
    outer_pop: int = 20,
    max_backbones: int = 3,
    inner_budget: int = 60,
    inner_pop: int = 12,
    gamma: float = 1.0,
    controller: str = "max_softmax",
    max_accuracy_drop: float = 1.0,
    test_batches: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
    seed: int = 0,
    resume: bool = False,
    archive: Archive | str | None = None,
    settings: Mapping[str, Any] | None = None,
    inner_callbacks: Sequence[SearchCallback] = (),
) -> dict[str, Any]:
    """Run the bi-level search; write both fronts, a plot and ``summary.json`` into ``out_dir``.

    Args:
        prepare: backbone arch string -> multi-exit network with its frozen (pretrained)
            backbone and trained exits (e.g. :class:`lightning_modules.multi_exit.ExitPipeline`).
        valid_batches: the valid split, ``(x, y)`` batches; dynamic accuracy and real early
            exit are measured on it (their size is the deployment batch of the measured
            latency: 1 for per-sample latency).
        dvfs: the platform's DVFS model (``conf/dvfs/jetson_tx2.yaml`` + its parameters).
        out_dir: output folder (also the default archive, ``hadas.sqlite``).
        table: the NAS-Bench-201 table (default: the bundled one).
        device: table device of the static latency / energy (``edgegpu`` = Jetson TX2).
        accuracy_column: table accuracy of the outer search.
        outer_budget, outer_pop: outer NSGA-II validations and population.
        max_backbones: outer-front backbones that get an inner search.
        inner_budget, inner_pop: per backbone, inner NSGA-II validations and population.
        gamma: dissimilarity exponent (eq. 6-7) of the reported score.
        controller: runtime controller of the measured early-exit inference of each
            backbone's chosen dynamic network (``max_softmax`` or ``entropy``); its threshold
            is calibrated on the valid split (:func:`calibrate_threshold`).
        max_accuracy_drop: accuracy points the calibrated controller may lose to the backbone.
        test_batches: where the controller is measured (default: the valid split, which is
            optimistic since the threshold was calibrated there).
        seed: seed of every search.
        resume: continue the studies found in the archive.
        archive: the archive (default: ``out_dir/hadas.sqlite``).
        settings: what ``prepare`` depends on (keys the inner evaluations in the archive).
        inner_callbacks: hooks passed to every inner search.

    Returns:
        The summary (also in ``summary.json``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    archive = archive or f"sqlite:///{out / 'hadas.sqlite'}"
    archive = Archive(archive) if isinstance(archive, str) else archive
    table = table or NB201Table.bundled()
    lat_key, en_key = f"latency_ms_{device}", f"energy_mj_{device}"

    outer = run_search(
        KeyedSpace(NB201Space()),
        [
            {"metric": "acc", "mode": "max"},
            {"metric": "latency_ms", "device": device, "mode": "min"},
            {"metric": "energy_mj", "device": device, "mode": "min"},
        ],
        TableEvaluator(metric_columns={"acc": accuracy_column}),
        tactic=FullSearch(functools.partial(nsga2, pop_size=outer_pop)),
        budget=outer_budget,
        archive=archive,
        study="hadas/outer",
        seed=seed,
        resume=bool(resume and "hadas/outer" in archive.studies()),
    )
    # a cell with no path from input to output computes zeros (the table's ~10% networks):
    # nothing for exits to read, so such front members get no inner search
    usable = [e for e in outer.front if is_connected(e.arch)]
    chosen = _pick(usable, max_backbones, key=lambda e: e.metrics["acc"])
    log.info("outer front: %d backbones, %d get an inner search", len(outer.front), len(chosen))

    static, dynamic_fronts, explored, per_backbone = [], [], [], []
    for ev in chosen:
        b = ev.arch
        net = prepare(b)
        lat_b, en_b = float(ev.metrics[lat_key]), float(ev.metrics[en_key])
        evaluation = DynamicEvaluation(net, valid_batches, dvfs, lat_b, en_b, gamma)
        inner = run_inner(
            evaluation,
            b,
            budget=inner_budget,
            pop_size=inner_pop,
            archive=archive,
            study=f"hadas/inner/{arch_id({'arch': b})}",
            seed=seed,
            resume=resume,
            settings=settings,
            callbacks=inner_callbacks,
        )
        s = {"backbone": b, "acc_top1": evaluation.static_acc, "energy_mj": en_b,
             "latency_ms": lat_b, "table_acc": ev.metrics["acc"]}  # fmt: skip
        static.append(s)
        # the archive keeps the objectives only; the rest is recomputed (cheap, deterministic)
        explored += [
            {"backbone": b, "inner": e.arch, **evaluation(e.arch)} for e in inner.evaluations
        ]
        front = [{"backbone": b, "inner": e.arch, **evaluation(e.arch)} for e in inner.front]
        dynamic_fronts += front
        # the deployable controller on the dynamic network that saves most at equal accuracy:
        # threshold calibrated on the valid split, measured on ``test_batches``
        matched = at_equal_accuracy([s], front)
        record: dict[str, Any] = {"backbone": b, "static": s, "inner_front": len(front)}
        if matched:
            pick = matched[0]["dynamic"]
            active, setting = evaluation.space.split(pick["inner"])
            cal = calibrate_threshold(net, valid_batches, controller, active, max_accuracy_drop)
            measured_on = valid_batches if test_batches is None else test_batches
            rule = confidence_rule(controller, cal["threshold"])
            real = run_early_exit(net, measured_on, rule, active)
            lat, en = evaluation.cost.per_exit(active, setting)
            idx = np.asarray(real.pop("exit_index"))
            real.update(
                energy_mj=float(en[idx].mean()),
                latency_ms_tx2_model=float(lat[idx].mean()),
                controller=controller,
                calibration=cal,
                measured_on="valid" if test_batches is None else "test",
            )
            # the same loop with no exit active: the static backbone, measured alike
            alone = run_early_exit(net, measured_on, rule, ())
            static_real = {k: alone[k] for k in ("acc_top1", "latency_ms", "mean_blocks_run")}
            real["energy_saving_vs_static"] = 1.0 - real["energy_mj"] / en_b
            real["acc_change_vs_static"] = real["acc_top1"] - static_real["acc_top1"]
            record.update(
                ideal=pick, real_early_exit=real, real_static=static_real, setting=setting
            )
        per_backbone.append(record)

    static_front, dynamic_front = _front(static), _front(dynamic_fronts)
    summary: dict[str, Any] = {
        "outer": {"n_validated": outer.n_validated, "front": len(outer.front)},
        "backbones": per_backbone,
        "at_equal_accuracy": at_equal_accuracy(static_front, dynamic_front),
    }
    if static_front and dynamic_front:
        summary["dynamic_vs_static"] = compare_fronts(
            np.array([[-p["acc_top1"], p["energy_mj"]] for p in dynamic_front]),
            np.array([[-p["acc_top1"], p["energy_mj"]] for p in static_front]),
        )
    real = [b for b in per_backbone if "real_early_exit" in b]
    if real:
        # the deployable controllers against their static backbones, measured on one split
        dyn = [{"acc_top1": b["real_early_exit"]["acc_top1"],
                "energy_mj": b["real_early_exit"]["energy_mj"]} for b in real]  # fmt: skip
        sta = [{"acc_top1": b["real_static"]["acc_top1"], "energy_mj": b["static"]["energy_mj"]}
               for b in real]  # fmt: skip
        summary["real_vs_static"] = compare_fronts(
            np.array([[-p["acc_top1"], p["energy_mj"]] for p in _front(dyn)]),
            np.array([[-p["acc_top1"], p["energy_mj"]] for p in _front(sta)]),
        )
    (out / "static_front.json").write_text(strict_json(static_front, indent=1))
    (out / "dynamic_front.json").write_text(strict_json(dynamic_front, indent=1))
    _plot(static_front, dynamic_front, explored, out / "static_vs_dynamic.png")
    (out / "summary.json").write_text(strict_json(summary, indent=1))
    return summary
