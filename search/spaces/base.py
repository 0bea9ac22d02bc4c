"""Architectures as plain data, the search-space and supernet protocols, and a generic space.

An architecture is a mapping of decision label -> choice (``{"1<-0": "nor_conv_3x3", ...}``
for NAS-Bench-201, ``{"stage1.depth": 3, "stage1.block0.ks": 5, ...}`` for an elastic
MobileNetV3). It has one canonical JSON form (sorted keys, no spaces) and a stable id hashed
from it; each space also has a serialized string form that the archive keys on (canonical JSON
by default; NAS-Bench-201 keeps the benchmark's own arch string).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
from torch import nn

Architecture = dict[str, Any]  # decision label -> choice (JSON scalars)


def canonical_json(arch: Mapping[str, Any]) -> str:
    """The one JSON text of an architecture: sorted keys, no whitespace."""
    return json.dumps(dict(arch), sort_keys=True, separators=(",", ":"))


def arch_id(arch: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit id of an architecture (a hash of its canonical JSON)."""
    return hashlib.sha1(canonical_json(arch).encode()).hexdigest()[:16]


@runtime_checkable
class SearchSpace(Protocol):
    """What searches, training modules and devices need from a search space."""

    name: str

    @property
    def decisions(self) -> dict[str, tuple[Any, ...]]: ...

    def parse(self, arch: str | Mapping[str, Any]) -> Architecture: ...

    def serialize(self, arch: str | Mapping[str, Any]) -> str: ...

    def encode(self, arch: str | Mapping[str, Any]) -> np.ndarray: ...

    def decode(self, vector: Iterable[int]) -> Architecture: ...

    def sample(
        self, rng: np.random.Generator, n: int | None = None
    ) -> Architecture | list[Architecture]: ...

    def build_supernet(self) -> Supernet: ...

    def build_subnet(self, arch: str | Mapping[str, Any]) -> nn.Module: ...


@runtime_checkable
class Supernet(Protocol):
    """A weight-sharing network: the one interface training modules, evaluators and LUTs use.

    ``decisions`` are the choices the network holds now (after any pruning); ``set_active``
    picks the path that ``forward`` runs; ``extract_subnet`` returns a standalone network of
    one path whose outputs equal the supernet's with that path active.
    """

    num_classes: int

    @property
    def decisions(self) -> dict[str, tuple[Any, ...]]: ...

    def sample(self, rng: np.random.Generator) -> Architecture: ...

    def set_active(self, arch: str | Mapping[str, Any]) -> None: ...

    def extract_subnet(self, arch: str | Mapping[str, Any]) -> nn.Module: ...


class DecisionSpace:
    """A space of independent categorical decisions with validation, encoding and sampling.

    Subclasses give ``name`` and ``decisions`` (label -> choices) and the networks; the
    serialized form is canonical JSON unless a subclass overrides :meth:`serialize` and
    :meth:`parse` (as NAS-Bench-201 does for its benchmark strings).
    """

    name = "decisions"

    @property
    def decisions(self) -> dict[str, tuple[Any, ...]]:
        raise NotImplementedError

    def parse(self, arch: str | Mapping[str, Any]) -> Architecture:
        """The validated mapping of an architecture given as a mapping or its serialized form.

        Raises:
            ValueError: naming the bad decision or choice and what is valid.
        """
        arch = self._mapping(arch)
        decisions = self.decisions
        missing = [d for d in decisions if d not in arch]
        extra = [d for d in arch if d not in decisions]
        if missing or extra:
            raise ValueError(
                f"{self.name} architecture {dict(arch)!r}: missing decisions {missing}, unknown "
                f"decisions {extra}; the decisions are {list(decisions)}"
            )
        for label, choices in decisions.items():
            if arch[label] not in choices:
                raise ValueError(
                    f"invalid choice {arch[label]!r} for {label!r} in {self.name}; "
                    f"valid: {list(choices)}"
                )
        return {label: arch[label] for label in decisions}

    def _mapping(self, arch: str | Mapping[str, Any]) -> Mapping[str, Any]:
        """The mapping of an architecture given as a mapping or its canonical JSON string,
        before its decisions are checked.

        Raises:
            ValueError: the string is not JSON, or the value is not a mapping.
        """
        if isinstance(arch, str):
            try:
                arch = json.loads(arch)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"a {self.name} architecture string must be its canonical JSON form, "
                    f"got {arch!r} ({err.msg})"
                ) from None
        if not isinstance(arch, Mapping):
            raise ValueError(
                f"a {self.name} architecture is a mapping of decision -> choice, got "
                f"{type(arch).__name__}: {arch!r}"
            )
        return arch

    def serialize(self, arch: str | Mapping[str, Any]) -> str:
        """The architecture's serialized form (the archive key): its canonical JSON."""
        return canonical_json(self.parse(arch))

    def arch_id(self, arch: str | Mapping[str, Any]) -> str:
        """Stable id of an architecture (the same for both of its forms)."""
        return arch_id(self.parse(arch))

    def encode(self, arch: str | Mapping[str, Any]) -> np.ndarray:
        """Integer vector: the index of each decision's choice, in decision order."""
        arch = self.parse(arch)
        return np.array(
            [choices.index(arch[label]) for label, choices in self.decisions.items()],
            dtype=np.int64,
        )

    def decode(self, vector: Iterable[int]) -> Architecture:
        """The architecture of an integer vector (one choice index per decision)."""
        vec = [int(v) for v in vector]
        decisions = self.decisions
        if len(vec) != len(decisions) or any(
            not 0 <= v < len(c) for v, c in zip(vec, decisions.values(), strict=False)
        ):
            raise ValueError(
                f"a {self.name} vector has one entry per decision ({len(decisions)}), each in "
                f"0..len(choices)-1 (sizes {[len(c) for c in decisions.values()]}), got {vec}"
            )
        return {label: c[v] for (label, c), v in zip(decisions.items(), vec, strict=True)}

    def sample(
        self, rng: np.random.Generator, n: int | None = None
    ) -> Architecture | list[Architecture]:
        """Uniformly random architecture(s); ``n=None`` returns one."""
        sizes = [len(c) for c in self.decisions.values()]
        vecs = rng.integers(0, sizes, size=(1 if n is None else n, len(sizes)))
        archs = [self.decode(v) for v in vecs]
        return archs[0] if n is None else archs
