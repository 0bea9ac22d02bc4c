"""Validation by benchmark-table lookup (NAS-Bench-201), with hardware devices plugged in."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from search.evaluators.base import Metrics, Target, clean
from search.evaluators.sizes import TABLE_NETWORK, Sized, check_one_network, network_size
from search.objectives import Constraint, Objective


class TableEvaluator:
    """Validation by benchmark-table lookup (NAS-Bench-201), with devices able to plug in.

    Args:
        table_path: ``None`` for the bundled table, else a CSV or official ``.pth`` file.
        metric_columns: device-independent metric name -> table column, e.g.
            ``{acc_top1: acc_cifar10_test}``. A metric on a device (``latency_ms`` on
            ``edgegpu``) reads column ``latency_ms_edgegpu``.
        devices: device name -> object with ``metrics(arch, model) -> dict`` (the
            ``hardware.base.Device`` protocol); metrics on these devices are measured there
            instead of read from the table.
        model_builder: builds the network a device runs (e.g. ``space.build_subnet``); devices
            that only need the arch string get ``model=None`` when it is not given.
        exclude_degenerate: leave rows at the minimum of an accuracy column (NAS-Bench-201's
            10% cells, where nothing reaches the output) out of :meth:`true_front` only.
        allow_size_mismatch: search even when a device measures a network of another size
            than the table's C=16, N=5 (a warning instead of the error,
            :func:`search.evaluators.sizes.check_one_network`).
    """

    kind = "validation"

    def __init__(
        self,
        table_path: str | None = None,
        metric_columns: Mapping[str, str] | None = None,
        devices: Mapping[str, Any] | None = None,
        model_builder: Callable[[str], Any] | None = None,
        exclude_degenerate: bool = True,
        allow_size_mismatch: bool = False,
    ) -> None:
        from search.benchmarks import NB201Table

        self.table = NB201Table.load(table_path)
        self.metric_columns = dict(metric_columns or {})
        self.devices = dict(devices or {})
        self.model_builder = model_builder
        self.exclude_degenerate = exclude_degenerate
        self.allow_size_mismatch = allow_size_mismatch
        # the devices measuring metrics are part of what produced a result
        self.name = "+".join(["validation:nb201_table", *(f"device:{d}" for d in self.devices)])
        self._columns = [c for c in self.table.columns if c not in ("nb201_index", "arch_str")]
        for metric, column in self.metric_columns.items():
            if column not in self._columns:
                raise KeyError(
                    f"metric_columns maps {metric!r} to unknown column {column!r}; "
                    f"columns: {self._columns}"
                )

    # Names -------------------------------------------------------------------------------
    def metrics_without_device(self) -> list[str]:
        return sorted(set(self.metric_columns) | set(self._columns))

    def devices_of(self, metric: str) -> list[str]:
        """Devices with a ``<metric>_<device>`` column, or plugged in."""
        found = {c.removeprefix(metric + "_") for c in self._columns if c.startswith(metric + "_")}
        return sorted(found | set(self.devices))

    def source(self, metric: str, device: str | None) -> str:
        """Where ``metric`` (on ``device``) comes from: a table column or ``device:<name>``.

        Raises:
            KeyError: naming the unknown metric / device and the valid ones.
        """
        if device is None:
            if metric in self.metric_columns:
                return self.metric_columns[metric]
            if metric in self._columns:
                return metric
            raise KeyError(
                f"unknown metric {metric!r} without a device; valid metrics: "
                f"{self.metrics_without_device()} (latency and energy need a device)"
            )
        if device in self.devices:
            return f"device:{device}"
        column = f"{metric}_{device}"
        if column in self._columns:
            return column
        devices = self.devices_of(metric)
        if not devices:
            metrics = sorted({c.rsplit("_", 1)[0] for c in self._columns if c.count("_") >= 2})
            raise KeyError(
                f"unknown metric {metric!r} on device {device!r}; metrics measured per device "
                f"look like {metrics[:8]}"
            )
        raise KeyError(f"unknown device {device!r} for metric {metric!r}; valid devices: {devices}")

    # Interface ---------------------------------------------------------------------------
    def network_sizes(self, targets: Sequence[Target]) -> dict[str, Sized]:
        """Per target, the size of the network its values come from, where known: the table's
        own for table columns, the space of the device's networks for a plugged-in device."""
        out: dict[str, Sized] = {}
        for t in targets:
            if self.source(t.metric, t.device).startswith("device:"):
                size = network_size(self.devices[t.device])
                if size is not None:
                    out[t.key] = (size, f"device {t.device!r}")
            else:
                out[t.key] = (dict(TABLE_NETWORK), "the NAS-Bench-201 table")
        return out

    def check(self, objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> None:
        for o in [*objectives, *constraints]:
            self.source(o.metric, o.device)
        sizes = self.network_sizes([*objectives, *constraints])
        check_one_network(sizes, self.allow_size_mismatch)
        for c in constraints:
            lo, hi = self.bounds(c)
            if (c.op == "<=" and lo > c.value) or (c.op == ">=" and hi < c.value):
                raise ValueError(
                    f"constraint {c} is infeasible: {c.key} ranges over [{lo:g}, {hi:g}] "
                    f"in the table ({self.table.source})"
                )

    def settings(self, targets: Sequence[Target]) -> dict[str, Any]:
        sources: dict[str, Any] = {}
        for t in targets:
            src = self.source(t.metric, t.device)
            if src.startswith("device:"):
                dev = self.devices[t.device]
                sources[t.key] = {
                    "device": t.device,
                    "class": f"{type(dev).__module__}.{type(dev).__qualname__}",
                    "settings": getattr(dev, "settings", None),
                }
            else:
                sources[t.key] = src
        return {"evaluator": self.name, "table": self.table.source, "sources": sources}

    def evaluate(self, arch: str, targets: Sequence[Target]) -> Metrics:
        out: Metrics = {}
        row = model = None  # looked up / built only when a target needs it: a space without
        # a table (ofa_mbv3) gets all its metrics from devices
        for t in targets:
            src = self.source(t.metric, t.device)
            if src.startswith("device:"):
                if model is None and self.model_builder is not None:
                    model = self.model_builder(arch)
                out[t.key] = clean(self.devices[t.device].metrics(arch, model).get(t.metric))
            else:
                row = self.table.row(arch) if row is None else row
                out[t.key] = clean(self.table.frame.at[row, src])
        return out

    # Ground truth ------------------------------------------------------------------------
    def bounds(self, target: Target) -> tuple[float, float]:
        """Range of a table metric (for constraint feasibility)."""
        src = self.source(target.metric, target.device)
        if src.startswith("device:"):
            return -np.inf, np.inf
        col = self.table.frame[src].to_numpy(float)
        return float(np.nanmin(col)), float(np.nanmax(col))

    def true_values(self, targets: Sequence[Target]) -> tuple[list[str], np.ndarray]:
        """Every table row's values of ``targets`` (rows with a NaN and degenerate rows dropped)."""
        cols = []
        for t in targets:
            src = self.source(t.metric, t.device)
            if src.startswith("device:"):
                raise ValueError(f"{t.key} is measured on a device: the table has no ground truth")
            cols.append(src)
        values = self.table.frame[cols].to_numpy(float)
        keep = ~np.isnan(values).any(1)
        if self.exclude_degenerate:
            for j, col in enumerate(cols):
                if col.startswith("acc_"):
                    keep &= values[:, j] > np.nanmin(values[:, j])
        return list(self.table.frame["arch_str"].to_numpy()[keep]), values[keep]
