"""The latency LUT: op-signature timings with the device's settings, stored as a JSON file."""

from __future__ import annotations

import copy
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from hardware.lut.calibration import fit_overheads
from hardware.lut.trace import OpTrace

FORMAT = "hwnas-lut/1"
# Settings that must agree between a LUT file and the device that extends or uses it.
MATCHING = ("backend", "batch_size", "resolution", "in_channels", "dtype", "channels_last")
MATCHING_OPTIONAL = ("threads", "cpu", "gpu")
# How to fill a LUT's gaps, named in every missing-signature error.
HOW_TO_MEASURE = (
    "measure them on a machine with the LUT's device settings: LUTDevice(..., "
    "on_missing='measure') (hardware.on_missing=measure in conf/hardware/lut.yaml), "
    "LatencyLUT.extend(trace_ops(net, x), device, path), or rerun the build over these "
    "networks (python -m search.lut_cli ... --out <the LUT file>)"
)


class MissingOpsError(KeyError):
    """Op signatures a network calls that the LUT has no timing for.

    Attributes:
        signatures: the missing signatures (sorted).
        arch: the architecture whose network calls them (None where unknown).
        path: the LUT file (None for a table that was never loaded or saved).
    """

    def __init__(
        self, signatures: Iterable[str], arch: Any = None, path: str | Path | None = None
    ) -> None:
        self.signatures = sorted(set(signatures))
        self.arch, self.path = arch, None if path is None else str(path)
        where = f" {self.path!r}" if self.path is not None else ""
        of = f" for architecture {arch!r}" if arch is not None else ""
        listed = "; ".join(self.signatures[:5]) + ("; ..." if len(self.signatures) > 5 else "")
        self.message = (
            f"{len(self.signatures)} op signature(s){of} are not in the LUT{where}: {listed}. "
            f"To predict this network, {HOW_TO_MEASURE}"
        )
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would print the message as a quoted repr
        return self.message


class LatencyLUT:
    """Op-signature latency table with device metadata, stored as JSON.

    Args:
        ops: ``{signature: {count, mean_ms, std_ms, median_ms, iqr_ms}}``.
        device: settings of the device the ops were timed on.
        fixed_ms: calibrated once-per-forward remainder (None until :meth:`calibrate`).
        per_call_ms: calibrated per-op-call correction (None until :meth:`calibrate`; files
            written before it existed load as None, i.e. 0).
        calibration: the calibration record (archs, measured and op-sum latencies).
        stat: which per-op statistic predictions sum (``median_ms`` or ``mean_ms``).
        functional: whether tensor functions outside leaf modules are ops of the table (see
            :func:`trace_ops`); networks must be traced the same way to use it.
    """

    def __init__(
        self,
        ops: dict[str, dict[str, float]] | None = None,
        device: dict[str, Any] | None = None,
        fixed_ms: float | None = None,
        calibration: dict[str, Any] | None = None,
        stat: str = "median_ms",
        functional: bool = True,
        per_call_ms: float | None = None,
    ) -> None:
        if stat not in ("median_ms", "mean_ms"):
            raise ValueError(f"stat must be 'median_ms' or 'mean_ms', got {stat!r}")
        self.ops = dict(ops or {})
        self.device = dict(device or {})
        self.fixed_ms = fixed_ms
        self.per_call_ms = per_call_ms
        self.calibration = calibration
        self.stat = stat
        self.functional = functional
        self.build_seconds = 0.0
        self.path: str | None = None  # the file it was loaded from or last saved to

    # Persistence ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "device": self.device,
            "functional": self.functional,
            "fixed_ms": self.fixed_ms,
            "per_call_ms": self.per_call_ms,
            "calibration": self.calibration,
            "build_seconds": round(self.build_seconds, 3),
            "ops": self.ops,
        }

    def save(self, path: str | Path) -> None:
        """Write atomically (temp file + rename), so a crash never leaves a torn file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1))
        os.replace(tmp, path)
        self.path = str(path)

    @classmethod
    def load(cls, path: str | Path, stat: str = "median_ms") -> LatencyLUT:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"latency LUT {str(path)!r} does not exist")
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} latency LUT (format={data.get('format')})")
        lut = cls(
            data["ops"],
            data["device"],
            data.get("fixed_ms"),
            data.get("calibration"),
            stat,
            functional=bool(data.get("functional", True)),
            per_call_ms=data.get("per_call_ms"),
        )
        lut.build_seconds = float(data.get("build_seconds", 0.0))
        lut.path = str(path)
        return lut

    def check_device(self, settings: dict[str, Any]) -> None:
        """Refuse to mix timings from differently configured devices in one table."""
        if not self.device:
            return
        keys = MATCHING + tuple(k for k in MATCHING_OPTIONAL if k in self.device)
        diff = {
            k: (self.device.get(k), settings.get(k))
            for k in keys
            if self.device.get(k) != settings.get(k)
        }
        if diff:
            raise ValueError(
                f"LUT was built with different device settings (lut, now): {diff}; build a "
                "separate LUT file for this setting"
            )

    # Building -------------------------------------------------------------------------------
    def extend(
        self,
        trace: OpTrace,
        device: Any,
        path: str | Path | None = None,
        source: str | None = None,
    ) -> int:
        """Time the signatures of ``trace`` that the table lacks; returns how many were new.

        Args:
            trace: op calls of a network (from :func:`trace_ops`).
            device: a measured device (:class:`hardware.measure.CPUDevice` or ``CUDADevice``)
                whose ``time_callable`` and ``settings`` are used; refused (ValueError) if its
                settings differ from those the table was built with.
            path: if given, the table is saved after every new signature (resumable build).
            source: if given, recorded with a UTC timestamp (``measured_at``) in every new
                entry, e.g. ``"on_demand"`` for ops timed when a prediction needed them.
        """
        settings = device.settings()
        self.check_device(settings)
        if not self.device:
            self.device = {k: v for k, v in settings.items() if k != "load_average"}
        new = 0
        for sig, (op, args, kwargs) in trace.examples.items():
            if sig in self.ops:
                continue
            t0 = time.perf_counter()
            if isinstance(op, nn.Module):
                op = copy.deepcopy(op).eval()  # timed apart from the network it came from
            stats = device.time_callable(lambda op=op, a=args, k=kwargs: op(*a, **k))
            self.ops[sig] = {
                "count": stats.count,
                "mean_ms": stats.mean_ms,
                "std_ms": stats.std_ms,
                "median_ms": stats.median_ms,
                "iqr_ms": stats.iqr_ms,
            }
            if source is not None:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                self.ops[sig].update(source=source, measured_at=stamp)
            self.build_seconds += time.perf_counter() - t0
            new += 1
            if path is not None:
                self.save(path)
        return new

    def calibrate(
        self,
        measured_ms: Sequence[float],
        op_sums_ms: Sequence[float],
        n_calls: Sequence[int],
        names: Sequence[str] | None = None,
    ) -> None:
        """Fit ``per_call_ms`` and ``fixed_ms`` to whole-network measurements.

        ``measured - op_sum = n_calls * per_call_ms + fixed_ms`` by least squares, with
        ``per_call_ms >= -(fastest op)``, where that predicts held-out calibration networks
        better (leave-one-out mean absolute error) than the intercept alone; otherwise, and
        with fewer than 3 networks or a single op-call count (slope not identifiable),
        ``per_call_ms = 0`` and ``fixed_ms`` is the median of ``measured - op_sum`` (robust to
        one disturbed measurement).

        Args:
            measured_ms: measured latency of each calibration network.
            op_sums_ms: its op sum (:meth:`op_sum`).
            n_calls: its number of op calls (length of its trace).
            names: the networks' names (recorded).
        """
        fastest = min((e[self.stat] for e in self.ops.values()), default=0.0)
        self.per_call_ms, self.fixed_ms, self.calibration = fit_overheads(
            measured_ms, op_sums_ms, n_calls, fastest, names
        )

    # Prediction -----------------------------------------------------------------------------
    def missing(self, signatures: Iterable[str]) -> list[str]:
        """The distinct signatures of a list that the table has no timing for (sorted)."""
        return sorted({sig for sig in signatures if sig not in self.ops})

    def op_sum(self, signatures: Iterable[str]) -> float:
        """Sum of the per-op times of a signature list (with multiplicity).

        Raises:
            MissingOpsError: (a KeyError) naming the signatures the table lacks and its file.
        """
        counts = Counter(signatures)
        missing = self.missing(counts)
        if missing:
            raise MissingOpsError(missing, path=self.path)
        return sum((n * self.ops[sig][self.stat] for sig, n in counts.items()), 0.0)

    def overhead(self, n_calls: int) -> float:
        """Calibrated non-op latency of a network with ``n_calls`` op calls (0 if uncalibrated)."""
        return n_calls * (self.per_call_ms or 0.0) + (self.fixed_ms or 0.0)

    def predict(self, signatures: Iterable[str]) -> float:
        """Predicted latency in ms: op sum plus the calibrated per-call and fixed parts."""
        signatures = list(signatures)
        return self.op_sum(signatures) + self.overhead(len(signatures))
