"""Warm start (Intel section 5.1): the best front of another search seeds a new one."""

from __future__ import annotations

import numpy as np

from search.archive import Archive
from search.objectives import Objective
from search.pareto import pareto_ranks, to_minimization


def front_archs(
    url: str, study: str, size: int | None = None, busy_timeout_s: float = 60.0
) -> list[str]:
    """Best architectures of another search in an archive, by Pareto rank (warm start).

    The study's own recorded objectives decide what "best" means; rank-1 architectures come
    first, then rank 2, and so on, up to ``size`` (default: the first front only).
    """
    archive = Archive(url, busy_timeout_s=busy_timeout_s)
    try:
        info = archive.study(study)
        objectives = [Objective(**o) for o in info["objectives"]]
        evals = archive.evaluations(study=study)
    finally:
        archive.close()
    keys, modes = [o.key for o in objectives], [o.mode for o in objectives]
    done = [e for e in evals if all(e.metrics.get(k) is not None for k in keys)]
    if not done:
        raise ValueError(f"study {study!r} in {url} has no evaluation with all of {keys}")
    F = to_minimization(np.array([[e.metrics[k] for k in keys] for e in done]), modes)
    ranks = pareto_ranks(F)
    order = np.lexsort((np.arange(len(done)), ranks))
    if size is None:
        order = order[ranks[order] == 1]
    return [done[i].arch for i in order[:size]]
