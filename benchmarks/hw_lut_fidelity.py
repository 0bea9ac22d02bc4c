"""LUT fidelity: SRCC between forward-hook-LUT-predicted and measured latency of random NB201 nets.

Builds a latency LUT (hardware/lut/) over ``--n-archs`` random NAS-Bench-201 networks (C=16,
N=5 by default; ``--calibrate`` of them, spread over op-call counts, calibrate its per-call and
fixed parts), then measures every network whole and compares.

The whole-network measurements are taken in ``--passes`` interleaved passes, each over all
networks in a fresh random order, and a network's latency is the median over passes. Measured
in one sequential pass, the machine's slow drift (10-20% over minutes on a quiet cloud Xeon and
on an H100 host; lag-1 autocorrelation 0.6-0.7 of the residuals in measurement order, see
``hw_lut_offline.py``) shifts whole blocks of consecutive networks and caps the SRCC near 0.88
whatever the predictor; interleaving spreads every network over the run. Timing-sensitive: run
it on a quiet machine; the load average is recorded.

    python benchmarks/hw_lut_fidelity.py --n-archs 200 --threads 2
    python benchmarks/hw_lut_fidelity.py --n-archs 200 --backend cuda
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

# Multi-thread CPU timing needs OpenMP workers that spin between ops (hardware.measure's
# omp_wait_policy); the runtime reads this when torch loads, so it is set before that.
os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")

# Run from a plain checkout too (the device machine may not have the package installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.base import load_average  # noqa: E402
from hardware.lut import build_lut, trace_ops  # noqa: E402
from hardware.measure import CPUDevice, CUDADevice, measure_in_passes  # noqa: E402
from search.predictors import mape  # noqa: E402
from search.ranking import kendall_tau_b, spearman  # noqa: E402
from search.spaces import create_space  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-archs", type=int, default=200)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backend", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--calibrate", type=int, default=10, help="networks measured for per_call_ms, fixed_ms"
    )
    p.add_argument("--passes", type=int, default=5, help="interleaved measurement passes")
    p.add_argument(
        "--min-time-s",
        type=float,
        default=0.3,
        help="timed seconds per whole-network measurement in each pass (the LUT's op timings "
        "and calibration use the device default)",
    )
    p.add_argument(
        "--min-repeats", type=int, default=40, help="samples per whole-network measurement"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--lut", type=Path, default=None, help="LUT file (default: fresh, in --out's folder)"
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/hw_lut_fidelity.json"))
    args = p.parse_args()

    space = create_space("nb201", channels=args.channels, cells_per_stage=args.cells)
    archs = space.sample_unique(np.random.default_rng(args.seed), args.n_archs)
    if args.passes < 1:
        raise SystemExit(f"--passes must be >= 1, got {args.passes}")

    def make_device(**timing):
        common = dict(batch_size=args.batch_size, energy=False, **timing)
        if args.backend == "cpu":
            return CPUDevice(threads=args.threads, **common)
        return CUDADevice(**common)

    device = make_device()
    meter = make_device(min_time_s=args.min_time_s, min_repeats=args.min_repeats)
    lut_path = args.lut or args.out.with_name(f"{args.out.stem}_lut.json")
    if args.lut is None and lut_path.exists():
        lut_path.unlink()  # time a fresh table: the build time is part of the figure
    load_start = load_average()

    t0 = time.perf_counter()
    lut = build_lut(((a, space.build_subnet(a)) for a in archs), device, lut_path, args.calibrate)
    build_wall_s = time.perf_counter() - t0

    nets, sigs = {}, {}
    for arch in archs:
        nets[arch] = device.prepare(space.build_subnet(arch), device.torch_device)
        sigs[arch] = trace_ops(nets[arch], device.example_input(device.torch_device)).signatures
    t0 = time.perf_counter()
    runs = measure_in_passes(meter, [(a, nets[a]) for a in archs], args.passes, args.seed + 1)
    passes = dict(zip(archs, runs, strict=True))
    measure_wall_s = time.perf_counter() - t0
    rows = []
    for arch in archs:
        per_pass = [m["latency_ms"] for m in passes[arch]]
        rows.append(
            {
                "arch": arch,
                "measured_ms": float(np.median(per_pass)),
                "measured_passes_ms": per_pass,
                "measured_iqr_ms": [m["latency_iqr_ms"] for m in passes[arch]],
                "stable": all(m["latency_stable"] for m in passes[arch]),
                "predicted_ms": lut.predict(sigs[arch]),
                "op_sum_ms": lut.op_sum(sigs[arch]),
                "n_calls": len(sigs[arch]),
            }
        )
    measured = np.array([r["measured_ms"] for r in rows])
    predicted = np.array([r["predicted_ms"] for r in rows])
    doc = {
        "benchmark": "hw_lut_fidelity",
        "n_archs": len(archs),
        "space": {"name": "nb201", "channels": args.channels, "cells_per_stage": args.cells},
        "device": device.settings(),
        "lut_file": str(lut_path),
        "lut_signatures": len(lut.ops),
        "lut_build_wall_s": round(build_wall_s, 2),
        "lut_op_timing_s": round(lut.build_seconds, 2),
        "fixed_ms": lut.fixed_ms,
        "per_call_ms": lut.per_call_ms,
        "calibration": lut.calibration,
        "passes": args.passes,
        "measure_device": meter.settings(),
        "measure_wall_s": round(measure_wall_s, 1),
        "srcc": spearman(predicted, measured),
        "srcc_op_sum_only": spearman(np.array([r["op_sum_ms"] for r in rows]), measured),
        "srcc_single_pass": [
            spearman(predicted, np.array([r["measured_passes_ms"][k] for r in rows]))
            for k in range(args.passes)
        ],
        "kendall_tau": kendall_tau_b(predicted, measured),
        "mape_percent": mape(measured, predicted),
        "measured_ms_range": [float(measured.min()), float(measured.max())],
        "unstable_measurements": int(sum(not r["stable"] for r in rows)),
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(json.dumps({k: v for k, v in doc.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
