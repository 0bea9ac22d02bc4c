"""Building (or resuming) a latency LUT over named networks, calibrated on a few of them."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from hardware.base import Architecture, arch_record
from hardware.lut.calibration import spanning_subset
from hardware.lut.table import LatencyLUT
from hardware.lut.trace import trace_ops
from hardware.measure.passes import measure_in_passes


def build_lut(
    models: Iterable[tuple[Architecture, nn.Module]],
    device: Any,
    path: str | Path | None = None,
    calibrate: int = 0,
    functional: bool = True,
    calibration_passes: int = 3,
) -> LatencyLUT:
    """Build (or resume) a LUT over named networks, calibrating its overheads on a few.

    Every network is traced and its new op signatures timed (saved after each); then
    ``calibrate`` of them, spread over the op-call counts (:func:`spanning_subset`), are
    measured whole and :meth:`LatencyLUT.calibrate` fits ``per_call_ms`` and ``fixed_ms``. The
    networks are held until then.

    Args:
        models: ``(name, network)`` pairs, e.g. ``(arch, space.build_subnet(arch))``.
        device: a measured device (``CPUDevice`` / ``CUDADevice``) with its input shape.
        path: JSON file; an existing one is loaded and extended (resume).
        calibrate: networks measured whole to calibrate the overheads (skipped when the file
            already holds a calibration).
        functional: also time tensor functions outside leaf modules (see :func:`trace_ops`).
        calibration_passes: the calibration networks are measured in this many passes, each in
            a fresh shuffled order, and each network's latency is its median over the passes:
            a single measurement taken while the machine is disturbed (up to +60% on a shared
            VM) would otherwise tilt every prediction.
    """
    if calibration_passes < 1:
        raise ValueError(f"calibration_passes must be >= 1, got {calibration_passes}")
    if path is not None and Path(path).is_file():
        lut = LatencyLUT.load(path)
        if lut.functional != functional:
            raise ValueError(
                f"{path} was built with functional={lut.functional}; resume it with the same "
                "setting or build a new file"
            )
    else:
        lut = LatencyLUT(functional=functional)
    lut.check_device(device.settings())
    seen: list[tuple[Architecture, nn.Module, list[str]]] = []
    for name, model in models:
        net = device.prepare(model, device.torch_device)
        trace = trace_ops(net, device.example_input(device.torch_device), functional)
        lut.extend(trace, device, path)
        if calibrate > 0 and lut.calibration is None:
            seen.append((name, net, trace.signatures))
    if seen:
        calls = [len(sigs) for _, _, sigs in seen]
        sums = [lut.op_sum(sigs) for _, _, sigs in seen]
        chosen = spanning_subset(calls, sums, calibrate)
        t0 = time.perf_counter()
        runs = measure_in_passes(device, [seen[i][:2] for i in chosen], calibration_passes)
        passes = [[m["latency_ms"] for m in run] for run in runs]
        lut.build_seconds += time.perf_counter() - t0
        lut.calibrate(
            [float(np.median(p)) for p in passes],
            [sums[i] for i in chosen],
            [calls[i] for i in chosen],
            [arch_record(seen[i][0]) for i in chosen],  # JSON-serialisable names
        )
        lut.calibration["measured_passes_ms"] = passes
    if path is not None:
        lut.save(path)
    return lut
