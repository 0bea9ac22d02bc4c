"""The inner engine (HADAS IV-B4): exit placement x DVFS for one frozen backbone."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from hardware.dvfs import DvfsModel
from search.algorithms import nsga2
from search.archive import Archive
from search.evaluators import FunctionEvaluator
from search.hadas.cost import ExitCosts, PathCostModel
from search.hadas.score import dynamic_score, inner_objectives
from search.hadas.space import InnerSpace, KeyedSpace
from search.runner import SearchCallback, SearchResult, run_search
from search.spaces.exits import ExitSpace, MultiExitNetwork, ideal_exit_indices
from search.tactics import FullSearch

INNER_OBJECTIVES = [
    {"metric": "energy_gain", "mode": "max"},
    {"metric": "mean_correct_share", "mode": "max"},
]


class DynamicEvaluation:
    """Dynamic metrics of (exits, DVFS setting) choices on one trained multi-exit network.

    Every exit's predictions on the valid split are computed once; a choice is then scored
    under the ideal policy (a sample leaves at the first sampled exit that is right) with the
    latency / energy of each sample's path from :class:`PathCostModel`.

    Args:
        net: the multi-exit network (frozen backbone, trained exits).
        batches: the valid split as ``(x, y)`` batches.
        dvfs: the platform's DVFS model.
        static_latency_ms, static_energy_mj: the backbone's ``L_b``, ``E_b`` at the reference
            (top) clocks.
        gamma: dissimilarity exponent of eq. 6 (for the reported score ``D``).
    """

    def __init__(
        self,
        net: MultiExitNetwork,
        batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
        dvfs: DvfsModel,
        static_latency_ms: float,
        static_energy_mj: float,
        gamma: float = 1.0,
    ) -> None:
        net.eval()
        correct = []
        with torch.no_grad():
            for x, y in batches:
                correct.append(torch.stack([z.argmax(-1) == y for z in net(x)]).numpy())
        self.correct = np.concatenate(correct, axis=1)  # (exits + final, n)
        self.net = net
        self.positions = net.positions
        driving = [dvfs.compute_domain, dvfs.memory_domain]
        driving += [dvfs.host_domain] if dvfs.host_share > 0 else []
        self.space = InnerSpace(ExitSpace(net.positions), dvfs.space, [d for d in driving if d])
        self.cost = PathCostModel(ExitCosts.profile(net), dvfs, static_latency_ms, static_energy_mj)
        self.gamma = gamma
        self.static_acc = 100.0 * float(self.correct[-1].mean())

    def metrics_of(self, active: Sequence[int], setting: Mapping[str, float]) -> dict[str, Any]:
        idx = [self.positions.index(p) for p in active]
        corr = self.correct[idx]
        shares = corr.mean(1)
        exit_of = ideal_exit_indices(corr)
        right = np.where(exit_of < len(idx), True, self.correct[-1])
        lat, en = self.cost.per_exit(active, setting)
        out: dict[str, Any] = inner_objectives(
            shares, float(en[exit_of].mean()), self.cost.static_energy_mj, self.correct[-1].mean()
        )
        out.update(
            acc_top1=100.0 * float(right.mean()),
            energy_mj=float(en[exit_of].mean()),
            latency_ms=float(lat[exit_of].mean()),
            exit_share=(np.bincount(exit_of, minlength=len(idx) + 1) / len(exit_of)).tolist(),
            correct_share=shares.tolist(),
            n_exits=len(idx),
            dynamic_score=dynamic_score(
                shares,
                en[:-1] / self.cost.static_energy_mj,
                lat[:-1] / self.cost.static_latency_ms,
                self.gamma,
            )
            if idx
            else None,
        )
        return out

    def __call__(self, arch: str | Mapping[str, Any]) -> dict[str, Any]:
        active, setting = self.space.split(arch)
        return self.metrics_of(active, setting)


def run_inner(
    evaluation: DynamicEvaluation,
    backbone_key: str,
    *,
    budget: int,
    pop_size: int,
    archive: Archive | str = "sqlite://",
    study: str = "hadas/inner",
    seed: int = 0,
    resume: bool = False,
    settings: Mapping[str, Any] | None = None,
    callbacks: Sequence[SearchCallback] = (),
) -> SearchResult:
    """NSGA-II over exits x DVFS of one backbone.

    It maximizes energy gain and the mean correct share N_i of the sampled exits (HADAS Fig. 5
    and 7 axes), not eq. 5's score ``D``: as printed, ``D`` rises with the energy and latency
    ratios, so maximizing it would reward costlier exits (see
    :func:`search.hadas.score.dynamic_score`); ``D`` is in every metrics dict of the evaluation.

    ``settings`` (what trained the exits) and the backbone make the archive key, so two
    backbones never share an evaluation.
    """
    evaluate = evaluation.__call__

    def fn(arch: str) -> dict[str, Any]:
        return evaluate(arch)

    evaluator = FunctionEvaluator(
        fn,
        name="hadas_inner",
        settings={
            "backbone": backbone_key,
            "gamma": evaluation.gamma,
            "dvfs_space": evaluation.space.dvfs.name,
            **dict(settings or {}),
        },
    )
    archive = Archive(archive) if isinstance(archive, str) else archive
    return run_search(
        KeyedSpace(evaluation.space),
        INNER_OBJECTIVES,
        evaluator,
        tactic=FullSearch(functools.partial(nsga2, pop_size=pop_size)),
        budget=budget,
        archive=archive,
        study=study,
        seed=seed,
        resume=bool(resume and study in archive.studies()),
        callbacks=callbacks,
    )
