"""NAS-Bench-201 ground-truth table: accuracies and per-device latency / energy.

The bundled table (``data/nb201_benchmark.csv.gz``, 15,625 rows in official index order) joins
public releases: accuracies from NATS-Bench / NAS-Bench-201 (200 epochs, mean over seeds),
latencies from HELP (HayeonLee/HELP, MIT) and latency / energy from HW-NAS-Bench
(GATECH-EIC/HW-NAS-Bench, MIT). Empty cells mean "not measured" and are kept as NaN, never 0.

Users with the official ``NAS-Bench-201-v1_1-096897.pth`` can build the accuracy columns from
it with :meth:`NB201Table.from_official` (through the ``nas-bench-201`` API).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from search.spaces.nb201.space import NUM_ARCHS, arch_str, ops_of

Arch = str | Mapping[str, str]  # an arch string or a mapping edge -> op

log = logging.getLogger(__name__)

BUNDLED = "nb201_benchmark.csv.gz"

# Accuracy column -> (dataset name in the official API, key of get_more_info's result).
OFFICIAL_ACCURACIES = {
    "acc_cifar10_test": ("cifar10", "test-accuracy"),
    "acc_cifar100_test": ("cifar100", "test-accuracy"),
    "acc_imagenet16_120_test": ("ImageNet16-120", "test-accuracy"),
    "acc_cifar10valid_valid": ("cifar10-valid", "valid-accuracy"),
    "acc_cifar10valid_test": ("cifar10-valid", "test-accuracy"),
}


class NB201Table:
    """Look-ups into the NAS-Bench-201 table by architecture (string or mapping) or official index.

    Args:
        frame: one row per architecture with at least ``nb201_index`` and ``arch_str``.
        source: where the rows came from (logged and recorded in results).
    """

    def __init__(self, frame: pd.DataFrame, source: str) -> None:
        missing = {"nb201_index", "arch_str"} - set(frame.columns)
        if missing:
            raise ValueError(f"NAS-Bench-201 table from {source} lacks columns {sorted(missing)}")
        self.frame = frame.sort_values("nb201_index").reset_index(drop=True)
        self.source = source
        self._row_of = {a: i for i, a in enumerate(self.frame["arch_str"])}

    # Construction -------------------------------------------------------------------------
    @classmethod
    def bundled(cls) -> NB201Table:
        """The table shipped with the package."""
        with resources.as_file(resources.files("search.benchmarks") / "data" / BUNDLED) as p:
            return cls(pd.read_csv(p), source=f"bundled {BUNDLED}")

    @classmethod
    def from_csv(cls, path: str | Path) -> NB201Table:
        """A table in the bundled CSV layout (plain or gzipped)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"NAS-Bench-201 table {str(path)!r} does not exist")
        return cls(pd.read_csv(path), source=str(path))

    @classmethod
    def from_official(cls, path: str | Path, hp: str = "200") -> NB201Table:
        """Accuracy columns read from the official NAS-Bench-201 file via ``nas_201_api``.

        The file is loaded with ``weights_only=False`` because it holds numpy scalars that the
        API's own ``weights_only=True`` load rejects; it is the user's own trusted file.
        """
        import torch
        from nas_201_api import NASBench201API

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"official NAS-Bench-201 file {str(path)!r} does not exist "
                "(expected NAS-Bench-201-v1_1-096897.pth or v1_0)"
            )
        api = NASBench201API(torch.load(path, weights_only=False, map_location="cpu"), False)
        return cls(official_frame(api, hp=hp), source=f"official {path.name} (hp={hp})")

    @classmethod
    def load(cls, path: str | Path | None = None) -> NB201Table:
        """Bundled table if ``path`` is None, else a CSV or an official ``.pth`` file."""
        if path is None:
            return cls.bundled()
        return cls.from_official(path) if str(path).endswith(".pth") else cls.from_csv(path)

    # Look-ups ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame)

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    @cached_property
    def devices(self) -> list[str]:
        """Devices with a latency column (``latency_ms_<device>``)."""
        return sorted(
            c.removeprefix("latency_ms_") for c in self.columns if c.startswith("latency_ms_")
        )

    def column(self, metric: str, device: str | None = None) -> str:
        """Column name of ``metric`` (on ``device``), e.g. ``latency_ms`` + ``edgegpu``."""
        name = metric if device is None else f"{metric}_{device}"
        if name not in self.frame.columns:
            if device is not None and device not in self.devices:
                raise KeyError(f"unknown device {device!r}; devices in the table: {self.devices}")
            raise KeyError(
                f"no column {name!r} in the NAS-Bench-201 table; columns: {self.columns}"
            )
        return name

    def row(self, arch: Arch) -> int:
        """Row position of an architecture (validated; an arch string or a mapping)."""
        key = arch_str(ops_of(arch))
        try:
            return self._row_of[key]
        except KeyError:
            raise KeyError(f"architecture {key!r} is not in the table ({self.source})") from None

    def index_of(self, arch: Arch) -> int:
        """Official NAS-Bench-201 index of an arch string."""
        return int(self.frame.at[self.row(arch), "nb201_index"])

    def arch_of(self, index: int) -> str:
        """Arch string of an official NAS-Bench-201 index."""
        if not isinstance(index, (int, np.integer)) or not 0 <= index < NUM_ARCHS:
            raise IndexError(
                f"NAS-Bench-201 index must be an int in 0..{NUM_ARCHS - 1}, got {index!r}"
            )
        hits = np.flatnonzero(self.frame["nb201_index"].to_numpy() == index)
        if hits.size == 0:
            raise IndexError(f"index {index} is not in the table ({self.source})")
        return str(self.frame.at[int(hits[0]), "arch_str"])

    def values(self, archs: Sequence[Arch], column: str) -> np.ndarray:
        """Column values for many archs as floats; NaN where not measured."""
        if column not in self.frame.columns:
            raise KeyError(
                f"no column {column!r} in the NAS-Bench-201 table; columns: {self.columns}"
            )
        rows = [self.row(a) for a in archs]
        return self.frame[column].to_numpy(dtype=float)[rows]

    def query(self, arch: Arch, columns: Sequence[str] | None = None) -> dict[str, float | None]:
        """Metrics of one arch; ``None`` marks a value that was not measured."""
        cols = [c for c in self.columns if c not in ("nb201_index", "arch_str")]
        cols = cols if columns is None else list(columns)
        record = self.frame.iloc[self.row(arch)]
        out: dict[str, float | None] = {}
        for c in cols:
            if c not in self.frame.columns:
                raise KeyError(
                    f"no column {c!r} in the NAS-Bench-201 table; columns: {self.columns}"
                )
            v = record[c]
            out[c] = None if pd.isna(v) else float(v)
        return out


def official_frame(api, hp: str = "200") -> pd.DataFrame:
    """Accuracy table (bundled column names) from a ``NASBench201API`` instance.

    Accuracies are means over the trained seeds (``is_random=False``); a dataset missing for
    an architecture stays NaN.
    """
    rows = []
    for index in range(len(api)):
        row: dict[str, object] = {"nb201_index": index, "arch_str": api.arch(index)}
        for column, (dataset, key) in OFFICIAL_ACCURACIES.items():
            try:
                info = api.get_more_info(index, dataset, hp=hp, is_random=False)
            except (KeyError, ValueError) as err:
                log.debug("no %s for index %d: %s", dataset, index, err)
                info = {}
            row[column] = info.get(key, np.nan)
        rows.append(row)
    return pd.DataFrame(rows)
