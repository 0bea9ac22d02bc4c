"""The Dynamic-OFA family search per processor (Dynamic-OFA section 3.2-3.3).

Per processor (this CPU at 1 and 2 threads, CUDA where present, any LUT or table device):

1. **Alg. 1 for the parents.** The accuracy of the largest sub-network is the top; Alg. 1
   (:func:`search.dynamic_ofa.alg1.random_search`) runs at ``Acc_max = top - k * acc_step`` for
   ``k = 0 .. levels - 1``, ``per_level`` times each, with the latency bound starting at the
   smallest sub-network's latency and relaxed in steps of a fraction of the span up to the
   largest one's. Every call draws from a fresh generator of the same seed, so all calls walk
   one random sequence: each drawn architecture's accuracy is computed once and served from the
   cache afterwards (also to the other processors), and ``Parents`` makes every call return a
   new architecture. A call that exhausts ``itr_max`` draws is recorded and the next level
   tried.
2. **Evolutionary refinement** seeded with the parents (plus the smallest and largest
   sub-networks): NSGA-II over (top-1 max, latency min) with the discrete operators of
   :mod:`search.algorithms` on the space's integer encoding, through
   :func:`search.runner.run_search` (the archive stores every evaluation as it finishes; a
   rerun replays the search from the archive and validates nothing twice).
3. **Levels** from the Pareto front of everything evaluated for the processor
   (:func:`search.dynamic_ofa.levels.select_levels`), then, as the paper does, **re-measured**:
   BN statistics from ``bn_images`` training images on the extracted sub-network (saved as
   ``bn/<arch_id>.safetensors``), top-1 on the whole validation split with those statistics,
   latency on the real device under its full timing protocol. The candidates are a ladder
   ``oversample`` times denser than the family's; the level rule then runs again on the
   re-measured values (the paper re-measures the searched models, then takes their front), and
   the candidates it leaves out are recorded in the summary.

Every prediction and re-measurement is a row of the evaluation archive, keyed by the settings
that produced it (weights + data fingerprint for accuracy, device settings for latency), so a
killed run loses nothing and a rerun resumes.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hardware.runtime.family import save_bn, save_family
from search.algorithms import nsga2
from search.analytics import hypervolume
from search.archive import Archive, Evaluation, settings_key
from search.dynamic_ofa.alg1 import SearchExhausted, random_search
from search.dynamic_ofa.levels import front_indices, select_levels
from search.evaluators.base import Metrics, Target
from search.evaluators.subnet import accuracy, fingerprint, recalibrate_bn
from search.objectives import Constraint, Objective
from search.runner import run_search
from search.tactics import FullSearch

log = logging.getLogger(__name__)
VOLATILE_SETTINGS = ("load_average",)  # recorded with a measurement, not what determines it


class ArchiveCache:
    """One metric source's results per architecture key, stored in the archive as they finish.

    Args:
        archive: the evaluation archive.
        name: evaluator name recorded with each row (``predictor:latency_cpu_1t``).
        settings: everything that determines the results (its hash keys the rows).
        compute: ``key -> metrics`` for a key the archive lacks.
        study: the study rows are recorded under.
    """

    def __init__(
        self,
        archive: Archive,
        name: str,
        settings: Mapping[str, Any],
        compute: Callable[[str], Metrics],
        study: str,
    ) -> None:
        self.archive, self.name, self.compute, self.study = archive, name, compute, study
        self.settings = dict(settings)
        self.key = settings_key(self.settings)
        self.known: dict[str, Metrics] = {}
        self.computed = 0

    def get(self, key: str) -> Metrics | None:
        """Stored metrics of ``key`` (memory, then archive), or None."""
        if key not in self.known:
            ev = self.archive.lookup([key], self.key).get(key)
            if ev is None:
                return None
            self.known[key] = ev.metrics
        return self.known[key]

    def __call__(self, key: str) -> Metrics:
        found = self.get(key)
        if found is not None:
            return found
        start = time.perf_counter()
        metrics = dict(self.compute(key))
        ev, _ = self.archive.add(
            Evaluation(
                arch=key,
                metrics=metrics,
                evaluator=self.name,
                settings=self.settings,
                study=self.study,
                duration_s=time.perf_counter() - start,
                created_at=time.time(),
            )
        )
        self.computed += 1
        self.known[key] = ev.metrics
        return ev.metrics


def device_settings(device: Any) -> dict[str, Any]:
    """A device's settings without what varies between identical measurements (load)."""
    settings = device.settings() if hasattr(device, "settings") else {"device": device.name}
    return {k: v for k, v in settings.items() if k not in VOLATILE_SETTINGS}


@dataclass
class Processor:
    """A processor of the family: its latency source during the search and its real device.

    Attributes:
        name: the artifact's processor name (``cpu_1t``, ``cpu_2t``, ``cuda``, a table name).
        predict: the device predicting latency during the search (a measured device under a
            short timing protocol, a :class:`~hardware.lut.LUTDevice`, a table device).
        remeasure: the device that re-measures the selected members (full protocol), or None
            to keep the predicted latency (a table device has no real device here).
    """

    name: str
    predict: Any
    remeasure: Any | None = None


@dataclass
class ProcessorResult:
    """What the family search found for one processor."""

    name: str
    parents: list[str]
    alg1_calls: list[dict[str, Any]]
    evaluated: dict[str, tuple[float, float]]  # key -> (search-time acc, latency)
    front: list[str]
    selected: list[str]
    levels: list[dict[str, Any]]
    dropped: list[dict[str, Any]] = field(default_factory=list)
    refine: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] = field(default_factory=dict)
    computed: dict[str, int] = field(default_factory=dict)  # new measurements (0 on a resume)


class ProcessorEvaluator:
    """The refinement's evaluator for one processor: accuracy and latency from the caches."""

    kind = "validation"

    def __init__(self, processor: str, acc: ArchiveCache, lat: ArchiveCache, space: Any) -> None:
        self.processor, self.acc, self.lat, self.space = processor, acc, lat, space
        self.name = f"validation:dynamic_ofa_{processor}"

    def check(self, objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> None:
        ok = {"acc_top1", f"latency_ms_{self.processor}"}
        bad = [t.key for t in [*objectives, *constraints] if t.key not in ok]
        if bad:
            raise KeyError(
                f"the family evaluator of {self.processor!r} serves {sorted(ok)}, not {bad}"
            )

    def settings(self, targets: Sequence[Target]) -> dict[str, Any]:
        return {
            "evaluator": self.name,
            "accuracy": self.acc.key,
            "latency": self.lat.key,
            "keys": sorted(t.key for t in targets),
        }

    def evaluate(self, arch: Any, targets: Sequence[Target]) -> Metrics:
        key = self.space.serialize(arch)
        values = {
            "acc_top1": self.acc(key)["acc_top1"],
            f"latency_ms_{self.processor}": self.lat(key)["latency_ms"],
        }
        return {t.key: values[t.key] for t in targets}


def take_images(loader: Any, n: int | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``n`` images of a loader as (x, y) batches, the last one cut (None: all)."""
    out, have = [], 0
    for x, y in loader:
        if n is not None and have >= n:
            break
        keep = len(x) if n is None else min(len(x), n - have)
        out.append((x[:keep], y[:keep]))
        have += keep
    if n is not None and have < n:
        raise ValueError(f"asked for {n} images, the loader holds {have}")
    return out


class FamilySearch:
    """Dynamic-OFA's family of sub-networks per processor, written as one artifact.

    Args:
        space: the elastic space (``parse``, ``serialize``, ``arch_id``, ``sample``,
            ``max_arch``, ``min_arch``, ``build_subnet``).
        accuracy: a :class:`~search.evaluators.supernet.SupernetEvaluator` (its supernet, its
            recalibration and scoring batches: the search-time accuracy).
        datamodule: the data it was built from (BN images and the re-measurement split).
        processors: the processors to build a family for.
        archive: evaluation archive (resume).
        out_dir: the run directory; the artifact goes to ``out_dir / artifact_dir``.
        space_spec: ``{"name": ..., **builder kwargs}`` recorded in ``family.json``.
        checkpoint: the supernet checkpoint path recorded in ``family.json``.
        alg1: Alg. 1 settings (``levels``, ``per_level``, ``acc_step``, ``acc_r``,
            ``lat_init_frac``, ``lat_add_frac``, ``lat_max_frac``, ``itr_n``, ``itr_max``).
        refine: NSGA-II settings (``budget``: new validations, ``pop_size``).
        selection: level rule settings (``n_levels``, ``acc_step``, ``cover``).
        bn_images: training images per member's BN statistics (the paper: 2,000).
        final_val_images: validation images of the re-measured accuracy (None: whole split).
        seed: seed of every random draw.
        resume: ``"auto"``/True continues the studies in the archive, False starts them.
    """

    def __init__(
        self,
        space: Any,
        accuracy: Any,
        datamodule: Any,
        processors: Sequence[Processor],
        archive: Archive,
        out_dir: str | Path,
        space_spec: Mapping[str, Any],
        checkpoint: str,
        alg1: Mapping[str, Any],
        refine: Mapping[str, Any],
        selection: Mapping[str, Any],
        bn_images: int = 2000,
        final_val_images: int | None = None,
        artifact_dir: str = "family",
        seed: int = 0,
        resume: bool | str = "auto",
    ) -> None:
        if not processors:
            raise ValueError("the family search needs at least one processor")
        self.space, self.acc_eval, self.archive = space, accuracy, archive
        self.processors = list(processors)
        self.out_dir = Path(out_dir)
        self.artifact = self.out_dir / artifact_dir
        self.space_spec, self.checkpoint = dict(space_spec), str(checkpoint)
        self.alg1, self.refine, self.selection = dict(alg1), dict(refine), dict(selection)
        self.bn_images, self.seed, self.resume = bn_images, seed, resume
        self.net = accuracy.net
        self.weights_fingerprint = fingerprint(self.net)
        self.acc = ArchiveCache(
            archive,
            accuracy.name,
            accuracy.settings([Objective("acc_top1", "max")]),
            self._search_accuracy,
            "dynamic_ofa/accuracy",
        )
        datamodule.setup("fit")
        self.data_source = getattr(datamodule, "source", type(datamodule).__name__)
        self.bn_batches = [
            x for x, _ in take_images(datamodule.recalibration_dataloader(seed), bn_images)
        ]
        self.final_val = take_images(datamodule.val_dataloader(), final_val_images)
        self.n_final_val = sum(len(y) for _, y in self.final_val)
        self.final = ArchiveCache(
            archive,
            "validation:dynamic_ofa_final",
            {
                "evaluator": "dynamic_ofa_final",
                "weights": self.weights_fingerprint,
                "data": fingerprint(
                    torch.nn.Module(), [*self.bn_batches, *(x for x, _ in self.final_val)]
                ),
                "bn_images": bn_images,
                "val_images": self.n_final_val,
            },
            self._final_accuracy,
            "dynamic_ofa/final",
        )

    # Metric sources ------------------------------------------------------------------------
    def _search_accuracy(self, key: str) -> Metrics:
        result = self.acc_eval.subnets.evaluate_one(self.net, self.space.parse(key))
        return {"acc_top1": float(result["acc_top1"]), "loss": float(result["loss"])}

    def _final_accuracy(self, key: str) -> Metrics:
        """Re-measured top-1 with the member's own BN statistics, which it saves."""
        arch = self.space.parse(key)
        sub = self.net.extract_subnet(arch)
        recalibrate_bn(sub, self.bn_batches)
        save_bn(self.artifact, self.space.arch_id(arch), sub.state_dict())
        return accuracy(sub, self.final_val)

    def _latency_cache(self, processor: str, device: Any, kind: str) -> ArchiveCache:
        def compute(key: str) -> Metrics:
            arch = self.space.parse(key)
            m = device.metrics(arch, self.space.build_subnet(arch))
            return {"latency_ms": m["latency_ms"], "latency_iqr_ms": m.get("latency_iqr_ms")}

        return ArchiveCache(
            self.archive,
            f"{kind}:latency_{processor}",
            # the arch key names choices only: the space's settings say which network it is
            {"evaluator": f"latency_{kind}", "space": self.space_spec, **device_settings(device)},
            compute,
            f"dynamic_ofa/{kind}/{processor}",
        )

    # The search ----------------------------------------------------------------------------
    def run(self) -> dict[str, ProcessorResult]:
        """Search every processor, re-measure, write the artifact; results by processor."""
        results = {p.name: self.search_processor(p) for p in self.processors}
        save_family(  # every member's BN file was written when it was re-measured
            self.artifact,
            self.space_spec,
            {n: r.levels for n, r in results.items()},
            devices={n: r.device for n, r in results.items()},
            checkpoint=self.checkpoint,
            weights_fingerprint=self.weights_fingerprint,
            bn_images=self.bn_images,
        )
        return results

    def search_processor(self, proc: Processor) -> ProcessorResult:
        """Alg. 1 parents, NSGA-II refinement, level selection and re-measurement."""
        lat = self._latency_cache(proc.name, proc.predict, "predicted")
        parents, calls = self.collect_parents(proc.name, lat)
        refine, refined = self.refine_front(proc.name, lat, parents)
        evaluated = {
            k: (float(self.acc.known[k]["acc_top1"]), float(m["latency_ms"]))
            for k, m in lat.known.items()
            if k in self.acc.known
        }
        evaluated.update(refined)  # a resumed refinement serves these from the archive
        keys = list(evaluated)
        A = [evaluated[k][0] for k in keys]
        L = [evaluated[k][1] for k in keys]
        front = [keys[i] for i in front_indices(A, L)]
        # a ladder `oversample` times denser is re-measured; the levels are chosen on the
        # re-measured values (the paper re-measures the searched models, then takes the front)
        sel = dict(self.selection)
        dense = int(sel.pop("oversample", 1))
        ladder = dict(sel, n_levels=sel["n_levels"] * dense, acc_step=sel["acc_step"] / dense)
        selected = [keys[i] for i in select_levels(A, L, **ladder)]
        levels, dropped, real = self.remeasure(proc, selected, evaluated, sel)
        device = proc.remeasure if proc.remeasure is not None else proc.predict
        log.info(
            "%s: %d parents, %d evaluated, front of %d, %d levels (%d candidates left out)",
            proc.name,
            len(parents),
            len(evaluated),
            len(front),
            len(levels),
            len(dropped),
        )
        return ProcessorResult(
            proc.name,
            parents,
            calls,
            evaluated,
            front,
            selected,
            levels,
            dropped,
            refine,
            device_settings(device),
            {"latency_predicted": lat.computed, "latency_remeasured": real},
        )

    def collect_parents(self, processor: str, lat: ArchiveCache) -> tuple[list[str], list[dict]]:
        """Alg. 1 at accuracy levels stepping down from the largest sub-network's accuracy."""
        a = self.alg1
        key = self.space.serialize
        top_key, low_key = key(self.space.max_arch()), key(self.space.min_arch())
        top = self.acc(top_key)["acc_top1"]
        self.acc(low_key)
        lo, hi = lat(low_key)["latency_ms"], lat(top_key)["latency_ms"]
        span = max(hi - lo, 1e-9)
        bounds = dict(
            lat_init=lo + a["lat_init_frac"] * span,
            lat_add=a["lat_add_frac"] * span,
            lat_max=lo + a["lat_max_frac"] * span,
        )
        parents: list[str] = []
        calls: list[dict[str, Any]] = []
        for k in range(a["levels"]):
            acc_max = top - k * a["acc_step"]
            for _ in range(a["per_level"]):
                rng = np.random.default_rng(self.seed)  # one random sequence for every call
                try:
                    res = random_search(
                        lambda rng=rng: key(self.space.sample(rng)),
                        lambda k_: self.acc(k_)["acc_top1"],
                        lambda k_: lat(k_)["latency_ms"],
                        acc_max=acc_max,
                        acc_r=a["acc_r"],
                        itr_n=a["itr_n"],
                        itr_max=a["itr_max"],
                        parents=parents,
                        **bounds,
                    )
                except SearchExhausted as err:
                    calls.append({"acc_max": acc_max, "exhausted": str(err), "bound": err.bound})
                    log.info("%s: Alg. 1 at Acc_max=%.2f: %s", processor, acc_max, err)
                    break
                parents.append(res.arch)
                calls.append(
                    {"acc_max": acc_max, "arch": res.arch, "acc": res.acc,
                     "latency_ms": res.latency, "bound": res.bound, "draws": res.draws}
                )  # fmt: skip
        return parents, calls

    def refine_front(
        self, processor: str, lat: ArchiveCache, parents: list[str]
    ) -> tuple[dict[str, Any], dict[str, tuple[float, float]]]:
        """NSGA-II over (top-1, latency) seeded with the parents and the extreme sub-networks;
        returns its figures and its evaluations (key -> (top-1, latency))."""
        r = self.refine
        if r["budget"] <= 0:
            return {"budget": 0}, {}
        key = self.space.serialize
        seeds = list(
            dict.fromkeys([*parents, key(self.space.min_arch()), key(self.space.max_arch())])
        )
        evaluator = ProcessorEvaluator(processor, self.acc, lat, self.space)
        result = run_search(
            self.space,
            [
                {"metric": "acc_top1", "mode": "max"},
                {"metric": "latency_ms", "mode": "min", "device": processor},
            ],
            evaluator,
            tactic=FullSearch(functools.partial(nsga2, pop_size=r["pop_size"]), initial=seeds),
            budget=len(seeds) + r["budget"],
            archive=self.archive,
            study=f"dynamic_ofa/refine/{processor}",
            seed=self.seed,
            resume="auto" if str(self.resume).lower() in ("true", "auto") else "false",
        )
        lat_key = f"latency_ms_{processor}"
        refined = {
            e.arch: (float(e.metrics["acc_top1"]), float(e.metrics[lat_key]))
            for e in result.evaluations
            if e.metrics.get("acc_top1") is not None and e.metrics.get(lat_key) is not None
        }
        summary = {
            "budget": r["budget"],
            "seeds": len(seeds),
            "n_validated": result.n_validated,
            "front_size": len(result.front),
        }
        return summary, refined

    def remeasure(
        self,
        proc: Processor,
        selected: list[str],
        evaluated: Mapping[str, tuple[float, float]],
        selection: Mapping[str, Any],
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        """BN statistics, top-1 and real-device latency of the candidates, then the level rule
        on the re-measured values: the levels, the candidates left out, and how many latencies
        were measured now."""
        real = (
            None
            if proc.remeasure is None
            else self._latency_cache(proc.name, proc.remeasure, "measured")
        )
        rows = []
        for key in selected:
            arch = self.space.parse(key)
            aid = self.space.arch_id(arch)
            acc_final = self.final(key)
            if not (self.artifact / "bn" / f"{aid}.safetensors").is_file():
                self._final_accuracy(key)  # stored before, its BN file lost: write it again
            latency = evaluated[key][1] if real is None else real(key)["latency_ms"]
            rows.append(
                {
                    "arch": arch,
                    "arch_id": aid,
                    "acc_top1": float(acc_final["acc_top1"]),
                    "latency_ms": float(latency),
                    "search_acc_top1": evaluated[key][0],
                    "search_latency_ms": evaluated[key][1],
                    "latency_source": "measured" if real is not None else "predicted",
                }
            )
        A = [r["acc_top1"] for r in rows]
        L = [r["latency_ms"] for r in rows]
        chosen = select_levels(A, L, **selection)  # fastest first
        keep = set(chosen)
        kept = [rows[i] for i in chosen]
        for n, r in enumerate(kept, start=1):
            r["level"] = n
        dropped = [r for i, r in enumerate(rows) if i not in keep]
        return kept, dropped, 0 if real is None else real.computed


def family_hypervolume(
    points: Mapping[str, np.ndarray], ref: float = 1.1
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Hypervolume of each named (acc, latency) point set in one shared normalisation.

    Objectives are (-acc, latency), normalised to the box of all sets together (ideal 0, nadir
    1), reference point ``(ref, ref)``: every set is measured against the same point.
    """
    F = {
        k: np.column_stack([-np.asarray(v)[:, 0], np.asarray(v)[:, 1]])
        for k, v in points.items()
        if len(v)
    }
    allF = np.vstack(list(F.values()))
    ideal, nadir = allF.min(0), allF.max(0)
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    hv = {k: hypervolume((f - ideal) / span, np.full(2, ref)) for k, f in F.items()}
    box = {"ideal_acc_latency": [float(-ideal[0]), float(ideal[1])],
           "nadir_acc_latency": [float(-nadir[0]), float(nadir[1])]}  # fmt: skip
    return hv, box
