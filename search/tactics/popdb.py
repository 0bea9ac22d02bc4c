"""PopDB (Intel section 4.6): population density-based reduction of the space, then a tactic."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from search.archive import Archive
from search.problem import SearchProblem, arch_key, parse_key
from search.tactics.base import AlgorithmBuilder, Tactic

log = logging.getLogger(__name__)


class ReducedSpace:
    """A space restricted to some choices of each decision (same arch strings as the base).

    Args:
        base: the full space; its encodings index ``base.decisions[d]``.
        allowed: per decision label, the choices kept (in base order).
    """

    def __init__(self, base: Any, allowed: Mapping[str, Sequence[Any]]) -> None:
        self.base = base
        full = base.decisions
        unknown = set(allowed) - set(full)
        if unknown:
            raise KeyError(f"unknown decisions {sorted(unknown)}; decisions: {list(full)}")
        self.index = {d: [list(full[d]).index(c) for c in allowed.get(d, full[d])] for d in full}
        for d, idx in self.index.items():
            if not idx:
                raise ValueError(f"decision {d!r} keeps no choice")
        self._decisions = {d: tuple(full[d][i] for i in idx) for d, idx in self.index.items()}

    @property
    def decisions(self) -> dict[str, tuple[Any, ...]]:
        return dict(self._decisions)

    @property
    def size(self) -> int:
        return int(np.prod([len(c) for c in self._decisions.values()]))

    def encode(self, arch: str) -> np.ndarray:
        full = np.asarray(self.base.encode(arch))
        out = []
        for (d, idx), v in zip(self.index.items(), full, strict=True):
            if int(v) not in idx:
                raise ValueError(f"{arch!r} uses a choice of {d!r} outside the reduced space")
            out.append(idx.index(int(v)))
        return np.array(out, dtype=np.int64)

    def decode(self, vector: Sequence[int]) -> str:
        return self.base.decode(
            [idx[int(v)] for idx, v in zip(self.index.values(), vector, strict=True)]
        )

    def serialize(self, arch: Any) -> str:
        """The base space's key of an architecture."""
        return arch_key(self.base, arch)

    def parse(self, key: str) -> Any:
        """The base space's own form of a key."""
        return parse_key(self.base, key)

    def features(self, arch: str) -> np.ndarray:
        """The base space's predictor features (or its encoding)."""
        if hasattr(self.base, "features"):
            return self.base.features(arch)
        return np.asarray(self.base.encode(arch))

    @property
    def feature_choices(self) -> list[int]:
        if hasattr(self.base, "feature_choices"):
            return list(self.base.feature_choices)
        return [len(c) for c in self.base.decisions.values()]

    def sample(self, rng: np.random.Generator, n: int | None = None) -> str | list[str]:
        vecs = np.stack(
            [rng.integers(0, len(idx), size=1 if n is None else n) for idx in self.index.values()],
            1,
        )
        archs = [self.decode(v) for v in vecs]
        return archs[0] if n is None else archs


def popdb_space(
    space: Any,
    archs: Sequence[str],
    threshold: float = 0.01,
    min_cluster_size: int = 50,
    min_samples: int = 10,
) -> tuple[ReducedSpace, dict[str, Any]]:
    """PopDB constraints (Intel section 4.6): HDBSCAN over evaluated configurations.

    Clusters one-hot encodings of ``archs`` with ``sklearn.cluster.HDBSCAN``, takes the
    relative frequency of every (decision, choice) among the non-noise points, and drops the
    choices at or under ``threshold``. A decision keeps at least its most frequent choice.

    Returns:
        The reduced space and a report (cluster count, noise share, dropped choices).
    """
    from sklearn.cluster import HDBSCAN

    decisions = space.decisions
    X = np.stack([np.asarray(space.encode(a)) for a in archs])
    onehot = np.concatenate([np.eye(len(c))[X[:, j]] for j, c in enumerate(decisions.values())], 1)
    labels = HDBSCAN(
        min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True
    ).fit_predict(onehot)
    dense = X[labels >= 0]
    if len(dense) == 0:
        raise ValueError(
            f"HDBSCAN found no cluster among {len(archs)} configurations "
            f"(min_cluster_size={min_cluster_size}); lower it or evaluate more architectures"
        )
    allowed, dropped = {}, {}
    for j, (d, choices) in enumerate(decisions.items()):
        freq = np.bincount(dense[:, j], minlength=len(choices)) / len(dense)
        keep = [c for i, c in enumerate(choices) if freq[i] > threshold]
        allowed[d] = keep or [choices[int(np.argmax(freq))]]
        dropped[d] = [c for c in choices if c not in allowed[d]]
    reduced = ReducedSpace(space, allowed)
    report = {
        "clusters": int(labels.max() + 1),
        "noise_share": float((labels < 0).mean()),
        "dropped": {d: v for d, v in dropped.items() if v},
        "reduced_size": reduced.size,
    }
    return reduced, report


class PopDB(Tactic):
    """Search a space reduced by PopDB constraints learned from another study (section 4.6).

    Args:
        tactic: the tactic run on the reduced space (ConcurrentNAS in the paper), or a builder
            completed with ``algorithm`` (as configs give it).
        url: archive holding the source study.
        study: the source study (e.g. a full search on a similar device).
        threshold: relative frequency at or under which a choice is dropped (1% in the paper).
        min_cluster_size, min_samples: HDBSCAN settings (50 and 10 in the paper's Fig. 4).
    """

    def __init__(
        self,
        tactic: Tactic | Callable[..., Tactic],
        url: str,
        study: str,
        threshold: float = 0.01,
        min_cluster_size: int = 50,
        min_samples: int = 10,
        algorithm: AlgorithmBuilder | None = None,
    ) -> None:
        if not isinstance(tactic, Tactic):
            tactic = tactic(algorithm=algorithm)
        self.tactic = tactic
        self.url, self.study = url, study
        self.threshold, self.min_cluster_size, self.min_samples = (
            threshold,
            min_cluster_size,
            min_samples,
        )

    def setup(self, problem: SearchProblem, rng: np.random.Generator) -> None:
        archive = Archive(self.url)
        try:
            archs = [e.arch for e in archive.evaluations(study=self.study)]
        finally:
            archive.close()
        if not archs:
            raise ValueError(f"study {self.study!r} in {self.url} has no evaluations to cluster")
        self.space, self.report = popdb_space(
            problem.space, archs, self.threshold, self.min_cluster_size, self.min_samples
        )
        log.info("PopDB: %s", self.report)
        self.attach(problem)
        self.tactic.setup(problem, rng)

    def attach(self, problem: SearchProblem) -> None:
        problem.use_space(self.space)
        self.tactic.attach(problem)

    def step(self, problem: SearchProblem) -> None:
        self.tactic.step(problem)

    def done(self, problem: SearchProblem) -> bool:
        return self.tactic.done(problem)

    def predictor_scores(self) -> dict[str, float]:
        return self.tactic.predictor_scores()

    def predictor_history(self) -> list[dict[str, float]]:
        return self.tactic.predictor_history()
