"""Progressive-shrinking phases (OFA, Cai et al., ICLR 2020, section 3.2) and their sampler.

A phase says which dimensions of an elastic supernet are sampled while it trains; they grow in
OFA's order ``largest`` -> ``kernel`` -> ``depth`` -> ``expand``, each phase keeping the previous
phases' dimensions elastic:

- ``largest``: every decision at its maximum (the teacher), one sub-network per step;
- ``kernel``: kernel sizes and the input resolution elastic, depth and expand ratio maximal;
- ``depth``: also the depth of every stage, from the phase's ``depths`` (OFA: {4, 3}, then
  {4, 3, 2});
- ``expand``: also the expand ratio of every block, from ``expand_ratios`` (OFA: {6, 4}, then
  {6, 4, 3}).

A decision is classified by its label (:mod:`search.spaces.ofa_mbv3`): ``resolution``,
``stage{i}.depth``, ``stage{i}.block{j}.ks``, ``stage{i}.block{j}.expand``. A phase may restrict a
dimension that is elastic in it (``depths: [4, 3]`` for OFA's first depth stage) but not one that
is still fixed at its maximum: that is a configuration mistake and raises.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

KINDS = ("largest", "kernel", "depth", "expand")  # in the only order progressive shrinking allows
# phase key -> the decision dimension it restricts, and the first phase kind where it is elastic
DIMENSION_KEYS = {
    "resolutions": ("resolution", "kernel"),
    "kernel_sizes": ("ks", "kernel"),
    "depths": ("depth", "depth"),
    "expand_ratios": ("expand", "expand"),
}
PHASE_KEYS = ("name", "epochs", "n_subnets", *DIMENSION_KEYS)


def dimension_of(label: str) -> str:
    """The elastic dimension of a decision label: ``resolution``, ``ks``, ``depth`` or ``expand``.

    Raises:
        ValueError: the label is none of the OFA MobileNetV3 decision forms.
    """
    if label == "resolution":
        return "resolution"
    for dim in ("ks", "depth", "expand"):
        if label.endswith(f".{dim}"):
            return dim
    raise ValueError(
        f"decision {label!r} is not an elastic OFA decision (resolution, stage<i>.depth, "
        "stage<i>.block<j>.ks, stage<i>.block<j>.expand): progressive shrinking cannot schedule it"
    )


@dataclasses.dataclass(frozen=True)
class Phase:
    """One progressive-shrinking phase: its kind, length and the choices it samples from.

    Attributes:
        name: ``largest``, ``kernel``, ``depth`` or ``expand``.
        epochs: training epochs of the phase.
        n_subnets: sub-networks sampled per step, their gradients accumulated (OFA: 1 in the
            kernel phase, 2 in depth and 4 in expand on ImageNet).
        resolutions / kernel_sizes / depths / expand_ratios: the choices of that dimension,
            None for its default (all the space's choices where elastic, the maximum before).
    """

    name: str
    epochs: int
    n_subnets: int = 1
    resolutions: tuple[int, ...] | None = None
    kernel_sizes: tuple[int, ...] | None = None
    depths: tuple[int, ...] | None = None
    expand_ratios: tuple[int, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data (lists, no None) for hyperparameters and logs."""
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()
            if v is not None
        }


def parse_phases(phases: Sequence[Mapping[str, Any]]) -> list[Phase]:
    """Validated phases from config entries (mappings with the keys of :class:`Phase`).

    Raises:
        ValueError: naming the phase, the bad key or value and what is valid.
    """
    if not phases:
        raise ValueError("phases is empty: progressive shrinking needs at least one phase")
    out: list[Phase] = []
    for i, raw in enumerate(phases):
        if not isinstance(raw, Mapping):
            raise ValueError(f"phases[{i}]={raw!r}: each phase is a mapping with keys {PHASE_KEYS}")
        unknown = sorted(set(raw) - set(PHASE_KEYS))
        if unknown:
            raise ValueError(f"phases[{i}] has unknown keys {unknown}; valid keys: {PHASE_KEYS}")
        name = raw.get("name")
        if name not in KINDS:
            raise ValueError(f"phases[{i}].name={name!r}: must be one of {KINDS}")
        where = f"phases[{i}] ({name})"
        for key, low in (("epochs", 1), ("n_subnets", 1)):
            value = raw.get(key, 1)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
                raise ValueError(f"{where}.{key}={value!r}: must be an integer >= {low}")
        if name == "largest" and raw.get("n_subnets", 1) != 1:
            raise ValueError(
                f"{where}.n_subnets={raw['n_subnets']!r}: the largest phase trains the max "
                "architecture only, so n_subnets must be 1"
            )
        if out and KINDS.index(name) < KINDS.index(out[-1].name):
            raise ValueError(
                f"{where} comes after a {out[-1].name} phase: progressive shrinking runs the "
                f"phases in the order {' -> '.join(KINDS)}"
            )
        dims = {}
        for key, (dim, first) in DIMENSION_KEYS.items():
            if raw.get(key) is None:
                continue
            if KINDS.index(name) < KINDS.index(first):
                raise ValueError(
                    f"{where} sets {key}, but {dim} is elastic only from the {first} phase on "
                    f"(before it, every sub-network takes the maximum {dim})"
                )
            values = raw[key]
            if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
                raise ValueError(f"{where}.{key}={values!r}: must be a non-empty list of choices")
            dims[key] = tuple(values)
        out.append(
            Phase(name=name, epochs=raw.get("epochs", 1), n_subnets=raw.get("n_subnets", 1), **dims)
        )
    return out


def phase_choices(
    phase: Phase, decisions: Mapping[str, Sequence[Any]], max_arch: Mapping[str, Any]
) -> dict[str, tuple[Any, ...]]:
    """Per decision, the choices ``phase`` samples from (a single max choice where not elastic).

    Raises:
        ValueError: a phase's choice is not one of the space's choices for that decision.
    """
    elastic_from = {dim: first for dim, first in DIMENSION_KEYS.values()}
    given = {dim: getattr(phase, key) for key, (dim, _) in DIMENSION_KEYS.items()}
    out = {}
    for label, choices in decisions.items():
        dim = dimension_of(label)
        if KINDS.index(phase.name) < KINDS.index(elastic_from[dim]):
            out[label] = (max_arch[label],)
            continue
        if given[dim] is None:
            out[label] = tuple(choices)
            continue
        bad = [c for c in given[dim] if c not in choices]
        if bad:
            key = next(k for k, (d, _) in DIMENSION_KEYS.items() if d == dim)
            raise ValueError(
                f"{phase.name} phase: {key} {list(given[dim])} has {bad}, not a choice of "
                f"{label!r}; valid: {list(choices)}"
            )
        out[label] = tuple(given[dim])
    return out


class ShrinkingSampler:
    """Uniform sub-networks within a phase's choices: one resolution per step, ``n`` archs.

    OFA draws the input resolution per batch (its random-resize loader) and every other decision
    per sub-network; all the step's sub-networks (and the in-place teacher) see that resolution.

    Args:
        decisions: the supernet's decisions (label -> choices), in decision order.
        max_arch: the supernet's largest architecture.
        phases: the schedule.
        rng: generator owning all randomness of the sampler (checkpointed for exact resume).
    """

    def __init__(
        self,
        decisions: Mapping[str, Sequence[Any]],
        max_arch: Mapping[str, Any],
        phases: Sequence[Phase],
        rng: np.random.Generator,
    ) -> None:
        self.labels = list(decisions)
        self.choices = [phase_choices(p, decisions, max_arch) for p in phases]
        self.rng = rng

    def sample(self, phase_index: int, n: int) -> list[dict[str, Any]]:
        """``n`` architectures of phase ``phase_index``, sharing one input resolution."""
        allowed = self.choices[phase_index]
        shared = {}
        if "resolution" in allowed:
            res = allowed["resolution"]
            shared["resolution"] = res[int(self.rng.integers(len(res)))]
        archs = []
        for _ in range(n):
            arch = {}
            for label in self.labels:
                if label in shared:
                    arch[label] = shared[label]
                else:
                    c = allowed[label]
                    arch[label] = c[int(self.rng.integers(len(c)))]
            archs.append(arch)
        return archs


def arch_stats(arch: Mapping[str, Any]) -> dict[str, float]:
    """Mean depth per stage, mean kernel size and expand ratio over the blocks that run, and the
    resolution of an architecture (blocks past a stage's depth carry no weights: not counted)."""
    depth = {label.split(".")[0]: v for label, v in arch.items() if dimension_of(label) == "depth"}
    ks, expand = [], []
    for label, v in arch.items():
        dim = dimension_of(label)
        if dim in ("ks", "expand"):
            stage, block = label.split(".")[:2]
            if int(block.removeprefix("block")) < depth.get(stage, float("inf")):
                (ks if dim == "ks" else expand).append(v)
    out = {}
    if depth:
        out["depth"] = float(np.mean(list(depth.values())))
    if ks:
        out["ks"] = float(np.mean(ks))
    if expand:
        out["expand"] = float(np.mean(expand))
    if "resolution" in arch:
        out["resolution"] = float(arch["resolution"])
    return out
