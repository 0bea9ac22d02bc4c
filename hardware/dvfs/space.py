"""DVFS frequency spaces: the clock levels of each domain of a platform (HADAS Table II).

Every setting is a dict ``{domain: MHz}``, e.g. ``{"cpu": 2035.2, "gpu": 1300.5, "emc": 1866}``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from hardware.dvfs.backends import DvfsUnavailable, SysfsDvfsBackend


class DvfsSpace:
    """Frequency levels per clock domain of one platform.

    Args:
        name: platform name (``jetson_tx2``).
        domains: per domain either ``levels_mhz`` (the exact levels) or ``min_mhz``,
            ``max_mhz`` and ``count`` (``count`` evenly spaced levels, for sources such as
            HADAS Table II that publish only the range and cardinality); an optional
            ``source`` string says where the numbers come from.
        sysfs: the platform's clock files per domain (see :class:`SysfsDvfsBackend`), used by
            :meth:`sysfs_backend`; None where the platform has none.
    """

    def __init__(
        self,
        name: str,
        domains: Mapping[str, Mapping[str, Any]],
        sysfs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if not domains:
            raise ValueError(f"DVFS space {name!r} has no clock domains")
        self.name = name
        self._levels: dict[str, np.ndarray] = {}
        self.sources: dict[str, str | None] = {}
        for dom, spec in domains.items():
            spec = dict(spec)
            if spec.get("levels_mhz") is not None:
                levels = np.asarray(sorted(float(v) for v in spec["levels_mhz"]))
            elif {"min_mhz", "max_mhz", "count"} <= spec.keys():
                lo, hi, n = float(spec["min_mhz"]), float(spec["max_mhz"]), int(spec["count"])
                if not (0 < lo <= hi and n >= 1):
                    raise ValueError(f"bad range for {dom!r} of {name!r}: {spec}")
                levels = np.linspace(lo, hi, n)
            else:
                raise ValueError(
                    f"domain {dom!r} of DVFS space {name!r} needs levels_mhz or "
                    f"min_mhz/max_mhz/count, got keys {sorted(spec)}"
                )
            if len(levels) == 0 or levels[0] <= 0:
                raise ValueError(f"domain {dom!r} of {name!r} needs positive levels")
            self._levels[dom] = levels
            self.sources[dom] = spec.get("source")
        self.sysfs = {k: dict(v) for k, v in (sysfs or {}).items()}
        unknown = set(self.sysfs) - set(self._levels)
        if unknown:
            raise ValueError(f"sysfs entries for unknown domains {sorted(unknown)} in {name!r}")

    def sysfs_backend(self, root: str = "/") -> SysfsDvfsBackend:
        """The sysfs control backend of this platform (``root`` prefixes every path)."""
        if not self.sysfs:
            raise DvfsUnavailable(f"DVFS space {self.name!r} names no sysfs clock files")
        return SysfsDvfsBackend(self.sysfs, root=root)

    @property
    def domains(self) -> list[str]:
        return list(self._levels)

    def levels(self, domain: str) -> np.ndarray:
        """Levels of ``domain`` in MHz, ascending."""
        if domain not in self._levels:
            raise KeyError(
                f"unknown clock domain {domain!r}; domains of {self.name}: {self.domains}"
            )
        return self._levels[domain]

    def __len__(self) -> int:
        return int(np.prod([len(v) for v in self._levels.values()]))

    def max_setting(self) -> dict[str, float]:
        """Every domain at its highest level (what ``jetson_clocks`` pins)."""
        return {d: float(v[-1]) for d, v in self._levels.items()}

    def validate(self, setting: Mapping[str, float], tol_mhz: float = 0.5) -> dict[str, float]:
        """The setting with every level snapped to the space; clear error if it is not in it."""
        unknown = set(setting) - set(self._levels)
        if unknown:
            raise KeyError(
                f"unknown clock domain(s) {sorted(unknown)}; domains of {self.name}: {self.domains}"
            )
        out = {}
        for dom, mhz in setting.items():
            levels = self._levels[dom]
            i = int(np.argmin(np.abs(levels - float(mhz))))
            if abs(levels[i] - float(mhz)) > tol_mhz:
                raise ValueError(
                    f"{mhz} MHz is not a level of {dom!r} on {self.name}; levels (MHz): "
                    f"{[round(float(v), 2) for v in levels]}"
                )
            out[dom] = float(levels[i])
        return out

    def encode(self, setting: Mapping[str, float]) -> np.ndarray:
        """Level index per domain (domain order of the space)."""
        s = self.validate(setting)
        return np.array([int(np.argmin(np.abs(self._levels[d] - s[d]))) for d in self.domains])

    def decode(self, index: Sequence[int]) -> dict[str, float]:
        """Setting of a level-index vector."""
        if len(index) != len(self._levels):
            raise ValueError(f"need one level index per domain {self.domains}, got {list(index)}")
        return {d: float(self._levels[d][int(i)]) for d, i in zip(self.domains, index, strict=True)}

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """A uniformly random setting."""
        return self.decode([rng.integers(len(self._levels[d])) for d in self.domains])

    def settings(self) -> Iterator[dict[str, float]]:
        """Every setting of the space (product over domains)."""
        for combo in itertools.product(*self._levels.values()):
            yield dict(zip(self.domains, map(float, combo), strict=True))
