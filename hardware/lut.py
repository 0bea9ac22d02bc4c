"""Latency lookup table built with forward hooks (PRP-NAS appendix E), for any ``nn.Module``.

Building: every leaf module (a module without children) of the network gets a forward hook;
one forward pass records each call's *op signature* (module class, its constructor settings,
input and output shapes, dtypes and memory formats) in call order. Tensor functions called
outside leaf modules (a residual addition, ``torch.zeros_like``, ``flatten``) are ops too,
recorded through a ``TorchFunctionMode`` (``functional=False`` leaves them to the fixed part).
Every signature not yet in the table is then timed in isolation on the device at hand (the
module or function itself on a copy of the input it saw), under the device's timing protocol,
and stored as
``{signature: {count, mean_ms, std_ms, median_ms, iqr_ms}}`` (``count`` = timed samples) in a
JSON file with the device's settings. The file is rewritten after every new signature, so an
interrupted build resumes where it stopped and a rerun skips the signatures already timed.

Prediction: ``latency = sum over the network's op calls of the op's time
+ n_calls * per_call_ms + fixed_ms``. The two calibrated terms are what isolated op timing does
not see. ``per_call_ms`` is the per-call difference between an op inside the network and the
same op timed alone: module dispatch, the Python of non-leaf ``forward`` methods between calls
and cache effects on a CPU (positive), or, on a GPU, the launch latency and event overhead an
isolated timing pays per op but a network pipelines away (negative). ``fixed_ms`` is the
once-per-forward rest. Both are fitted by bounded least squares to (measured whole-network
latency - op sum) over ``calibrate`` networks chosen to span the op-call counts of the
networks the table was built on, each measured as the median of interleaved passes
(``per_call_ms`` >= minus the fastest op, so no op's effective time goes below zero). The
per-call term is kept only where its leave-one-out error on the calibration networks is below
that of the intercept alone (``fixed_ms`` = median of measured - op sum); both and the
calibration record are stored with the table.

Build from the command line (resumable; rerun the same command to continue)::

    python -m hardware.lut --space nb201 --channels 16 --cells 5 --n-archs 200 \
        --threads 2 --calibrate 10 --out luts/nb201_c16_n5_cpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import lsq_linear
from torch import nn
from torch.overrides import TorchFunctionMode

from hardware.base import ModelBuilder, energy_unavailable, resolve_model
from hardware.measure import measure_in_passes

FORMAT = "hwnas-lut/1"
# Settings that must agree between a LUT file and the device that extends or uses it.
MATCHING = ("backend", "batch_size", "resolution", "in_channels", "dtype", "channels_last")
MATCHING_OPTIONAL = ("threads", "cpu", "gpu")


def _describe(value: Any) -> str:
    """Shape/dtype/layout description of a forward argument or output (no values)."""
    if isinstance(value, torch.Tensor):
        shape = "x".join(map(str, value.shape)) or "scalar"
        dtype = str(value.dtype).removeprefix("torch.")
        cl = (
            ":cl"
            if value.dim() == 4
            and value.is_contiguous(memory_format=torch.channels_last)
            and not value.is_contiguous()
            else ""
        )
        return f"{shape}:{dtype}{cl}"
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(_describe(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={_describe(v)}" for k, v in sorted(value.items())) + "}"
    return repr(value)


def op_signature(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> str:
    """Signature of one leaf-op call: class, constructor settings, input and output shapes."""
    head = f"{type(module).__name__}({module.extra_repr()})"
    inputs = _describe(tuple(args)) + (_describe(kwargs) if kwargs else "")
    return f"{head}|in={inputs}|out={_describe(output)}"


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_clone(v) for v in value)
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


class OpTrace:
    """The op calls of one forward pass: signatures in call order and one replayable example each.

    An example is ``(op, args, kwargs)`` where ``op`` is the leaf module or the tensor function.
    """

    def __init__(self, signatures: list[str], examples: dict[str, tuple[Any, tuple, dict]]):
        self.signatures = signatures
        self.examples = examples

    @property
    def counts(self) -> Counter:
        """How often each signature is called in one forward pass."""
        return Counter(self.signatures)


def function_signature(func: Any, args: tuple, kwargs: dict, output: Any) -> str:
    """Signature of a tensor function called outside leaf modules (``fn:`` prefix)."""
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    inputs = _describe(tuple(args)) + (_describe(kwargs) if kwargs else "")
    return f"fn:{name}|in={inputs}|out={_describe(output)}"


class _FunctionalOps(TorchFunctionMode):
    """Sees every tensor function; reports those called outside leaf modules (depth 0)."""

    def __init__(self, on_call) -> None:
        super().__init__()
        self.on_call = on_call
        self.depth = 0  # > 0 while a leaf module runs: its internals are timed with it

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        # Only calls that produce a tensor are work (not .shape, .dim(), ...).
        if self.depth == 0 and isinstance(out, torch.Tensor):
            self.on_call(func, args, kwargs, out)
        return out


def trace_ops(
    model: nn.Module, inputs: torch.Tensor | Sequence[torch.Tensor], functional: bool = True
) -> OpTrace:
    """Run one forward pass with hooks on every leaf module and record the op calls.

    Args:
        model: any network, already on the target device and in eval mode.
        inputs: its input tensor (or tuple of tensors).
        functional: also record tensor functions called outside leaf modules (the additions
            of a residual or a NAS-Bench-201 cell, ``torch.zeros_like``, ``flatten``) through a
            ``TorchFunctionMode``; otherwise they fall into the LUT's fixed part.
    """
    args = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    signatures: list[str] = []
    examples: dict[str, tuple[Any, tuple, dict]] = {}

    def record(sig: str, op: Any, a: tuple, kw: dict) -> None:
        signatures.append(sig)
        if sig not in examples:
            # In-place ops (ReLU(inplace=True)) have overwritten their input by now; its shape,
            # dtype and layout are unchanged, which is all the timing replay needs.
            examples[sig] = (op, _clone(a), _clone(kw))

    mode = _FunctionalOps(lambda f, a, kw, out: record(function_signature(f, a, kw, out), f, a, kw))

    def pre_hook(module: nn.Module, a: tuple, kw: dict) -> None:
        mode.depth += 1

    def hook(module: nn.Module, a: tuple, kw: dict, out: Any) -> None:
        record(op_signature(module, a, kw, out), module, a, kw)
        mode.depth -= 1

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    if not leaves:
        raise ValueError(f"{type(model).__name__} has no modules to hook")
    handles = [m.register_forward_pre_hook(pre_hook, with_kwargs=True) for m in leaves]
    handles += [m.register_forward_hook(hook, with_kwargs=True) for m in leaves]
    try:
        with torch.inference_mode(), mode if functional else contextlib.nullcontext():
            model(*args)
    finally:
        for h in handles:
            h.remove()
    return OpTrace(signatures, examples)


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
    def extend(self, trace: OpTrace, device: Any, path: str | Path | None = None) -> int:
        """Time the signatures of ``trace`` that the table lacks; returns how many were new.

        Args:
            trace: op calls of a network (from :func:`trace_ops`).
            device: a measured device (:class:`hardware.measure.CPUDevice` or ``CUDADevice``)
                whose ``time_callable`` and ``settings`` are used.
            path: if given, the table is saved after every new signature (resumable build).
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
        measured, sums = np.asarray(measured_ms, float), np.asarray(op_sums_ms, float)
        calls = np.asarray(n_calls, float)
        if not (measured.shape == sums.shape == calls.shape) or measured.size == 0:
            raise ValueError(
                "need equally many (>= 1) measured latencies, op sums and op-call counts, got "
                f"{measured.size}, {sums.size}, {calls.size}"
            )
        gap = measured - sums
        fastest = min((e[self.stat] for e in self.ops.values()), default=0.0)
        loo = None
        if measured.size >= 3 and np.ptp(calls) > 0:
            # Leave-one-out error of both models: the slope is kept only where it predicts
            # held-out calibration networks better than the intercept alone (a noisy
            # calibration set must not tilt every prediction).
            loo = _held_out_errors(calls, gap, fastest)
        if loo is not None and loo["per_call"] < loo["fixed"]:
            self.per_call_ms, self.fixed_ms = map(float, _fit_overhead(calls, gap, fastest))
            rule = (
                "least squares: measured_ms - op_sum_ms = n_calls * per_call_ms + fixed_ms, "
                "per_call_ms >= -min op time (leave-one-out error below the intercept-only rule)"
            )
        else:
            self.per_call_ms, self.fixed_ms = 0.0, float(np.median(gap))
            rule = "per_call_ms = 0, fixed_ms = median(measured_ms - op_sum_ms)"
        residual = gap - (calls * self.per_call_ms + self.fixed_ms)
        self.calibration = {
            "archs": list(names) if names is not None else None,
            "measured_ms": measured.tolist(),
            "op_sum_ms": sums.tolist(),
            "n_calls": calls.astype(int).tolist(),
            "rule": rule,
            "residual_rms_ms": float(np.sqrt(np.mean(residual**2))),
            "leave_one_out_mae_ms": loo,
        }

    # Prediction -----------------------------------------------------------------------------
    def op_sum(self, signatures: Iterable[str]) -> float:
        """Sum of the per-op times of a signature list (with multiplicity)."""
        total = 0.0
        missing: set[str] = set()
        for sig, n in Counter(signatures).items():
            entry = self.ops.get(sig)
            if entry is None:
                missing.add(sig)
            else:
                total += n * entry[self.stat]
        if missing:
            raise KeyError(
                f"{len(missing)} op signature(s) are not in the LUT, e.g. {sorted(missing)[0]!r}; "
                "extend it (python -m hardware.lut ... or LatencyLUT.extend) on this network"
            )
        return total

    def overhead(self, n_calls: int) -> float:
        """Calibrated non-op latency of a network with ``n_calls`` op calls (0 if uncalibrated)."""
        return n_calls * (self.per_call_ms or 0.0) + (self.fixed_ms or 0.0)

    def predict(self, signatures: Iterable[str]) -> float:
        """Predicted latency in ms: op sum plus the calibrated per-call and fixed parts."""
        signatures = list(signatures)
        return self.op_sum(signatures) + self.overhead(len(signatures))


def _fit_overhead(calls: np.ndarray, gap: np.ndarray, fastest: float) -> np.ndarray:
    """``(per_call_ms, fixed_ms)`` by least squares, ``per_call_ms >= -fastest``."""
    design = np.column_stack([calls, np.ones_like(calls)])
    bounds = ([-fastest, -np.inf], [np.inf, np.inf])
    return lsq_linear(design, gap, bounds=bounds).x


def _held_out_errors(calls: np.ndarray, gap: np.ndarray, fastest: float) -> dict[str, float]:
    """Leave-one-out mean absolute error (ms) of the intercept-only and the per-call model."""
    fixed, per_call = [], []
    for i in range(gap.size):
        keep = np.arange(gap.size) != i
        fixed.append(abs(gap[i] - np.median(gap[keep])))
        slope, intercept = _fit_overhead(calls[keep], gap[keep], fastest)
        per_call.append(abs(gap[i] - (slope * calls[i] + intercept)))
    return {"fixed": float(np.mean(fixed)), "per_call": float(np.mean(per_call))}


def spanning_subset(n_calls: Sequence[int], op_sums: Sequence[float], k: int) -> list[int]:
    """Indices of ``k`` networks spread evenly over the sorted (op-call count, op sum) order.

    Calibrating on the first ``k`` networks can leave the per-call slope unidentified (similar
    call counts); evenly spaced ranks cover the shortest to the longest network.
    """
    n = len(n_calls)
    if k >= n:
        return list(range(n))
    order = np.lexsort((np.asarray(op_sums, float), np.asarray(n_calls)))
    picks = np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))
    return sorted(int(order[p]) for p in picks)


def build_lut(
    models: Iterable[tuple[str, nn.Module]],
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
    seen: list[tuple[str, nn.Module, list[str]]] = []
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
            [seen[i][0] for i in chosen],
        )
        lut.calibration["measured_passes_ms"] = passes
    if path is not None:
        lut.save(path)
    return lut


class LUTDevice:
    """Device whose latency is predicted from a latency LUT (sum of ops + calibrated overheads).

    Args:
        path: the LUT JSON file (built with ``python -m hardware.lut``).
        space: builds the network from an arch when ``metrics`` gets no model.
        batch_size, resolution, in_channels: input shape used to trace networks; None takes
            the values the LUT was built with.
        stat: per-op statistic to sum (``median_ms`` or ``mean_ms``).
        name: device name recorded in results.
    """

    def __init__(
        self,
        path: str,
        space: ModelBuilder | None = None,
        batch_size: int | None = None,
        resolution: int | None = None,
        in_channels: int | None = None,
        stat: str = "median_ms",
        name: str = "lut",
    ) -> None:
        self.lut = LatencyLUT.load(path, stat=stat)
        self.path = str(path)
        self.space = space
        dev = self.lut.device
        self.batch_size = batch_size or dev.get("batch_size", 1)
        self.resolution = resolution or dev.get("resolution", 32)
        self.in_channels = in_channels or dev.get("in_channels", 3)
        self.name = name
        self._signatures: dict[str, list[str]] = {}

    def signatures(self, arch: str, model: nn.Module | None = None) -> list[str]:
        """Op signatures of ``arch`` (traced once on CPU, then cached per arch)."""
        if arch not in self._signatures or model is not None:
            net = resolve_model(arch, model, self.space, self.name).eval()
            x = torch.zeros(self.batch_size, self.in_channels, self.resolution, self.resolution)
            if self.lut.device.get("channels_last"):
                net = net.to(memory_format=torch.channels_last)
                x = x.to(memory_format=torch.channels_last)
            self._signatures[arch] = trace_ops(net, x, self.lut.functional).signatures
        return self._signatures[arch]

    def metrics(self, arch: str, model: nn.Module | None = None) -> dict[str, Any]:
        """LUT-predicted ``latency_ms``; energy is not in a latency LUT."""
        sigs = self.signatures(arch, model)
        return {
            "arch": arch,
            "latency_ms": self.lut.predict(sigs),
            "latency_op_sum_ms": self.lut.op_sum(sigs),
            "latency_fixed_ms": self.lut.fixed_ms,
            "latency_per_call_ms": self.lut.per_call_ms,
            "latency_n_calls": len(sigs),
            **energy_unavailable("a latency lookup table holds no energy"),
            "settings": {
                **{k: v for k, v in self.lut.device.items() if k != "source"},
                "device": self.name,
                "source": f"lut {self.path}",
                "lut_device": self.lut.device.get("device"),
                "stat": self.lut.stat,
                "frequency_setting": self.lut.device.get("frequency_setting"),
            },
        }


# ---------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> None:
    """Build or resume a LUT for random architectures of a registered search space."""
    from hardware.measure import CPUDevice, CUDADevice
    from search.spaces import create_space

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--space", default="nb201", help="registered search space")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=5, help="cells per stage")
    p.add_argument("--n-archs", type=int, default=200, help="random archs whose ops are timed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument(
        "--calibrate",
        type=int,
        default=10,
        help="networks measured whole to fit per_call_ms and fixed_ms (spread over op-call counts)",
    )
    p.add_argument(
        "--calibration-passes",
        type=int,
        default=3,
        help="interleaved passes over the calibration networks (median per network)",
    )
    p.add_argument(
        "--no-functional",
        action="store_true",
        help="time leaf modules only (tensor functions outside them go to the fixed part)",
    )
    p.add_argument("--out", type=Path, required=True, help="LUT JSON (resumed if it exists)")
    args = p.parse_args(argv)

    space = create_space(args.space, channels=args.channels, cells_per_stage=args.cells)
    common = dict(batch_size=args.batch_size, resolution=args.resolution, energy=False)
    if args.backend == "cpu":
        device = CPUDevice(threads=args.threads, **common)
    else:
        device = CUDADevice(**common)
    archs = space.sample_unique(np.random.default_rng(args.seed), args.n_archs)
    lut = build_lut(
        ((a, space.build_subnet(a)) for a in archs),
        device,
        args.out,
        calibrate=args.calibrate,
        functional=not args.no_functional,
        calibration_passes=args.calibration_passes,
    )
    print(
        json.dumps(
            {
                "out": str(args.out),
                "signatures": len(lut.ops),
                "fixed_ms": lut.fixed_ms,
                "per_call_ms": lut.per_call_ms,
                "build_seconds": lut.build_seconds,
            }
        )
    )


if __name__ == "__main__":
    main()
