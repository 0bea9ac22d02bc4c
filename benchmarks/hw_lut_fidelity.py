"""LUT fidelity: SRCC between forward-hook-LUT-predicted and measured latency of random NB201 nets.

Builds a latency LUT (hardware/lut.py) over ``--n-archs`` random NAS-Bench-201 networks (C=16,
N=5 by default), then measures every network whole under the same timing protocol and
compares. Timing-sensitive: run it on a quiet machine; the load average is recorded.

    python benchmarks/hw_lut_fidelity.py --n-archs 200 --threads 2
    python benchmarks/hw_lut_fidelity.py --n-archs 200 --backend cuda
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

# Run from a plain checkout too (the device machine may not have the package installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.base import load_average  # noqa: E402
from hardware.lut import build_lut, trace_ops  # noqa: E402
from hardware.measure import CPUDevice, CUDADevice  # noqa: E402
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
    p.add_argument("--calibrate", type=int, default=5, help="networks measured for fixed_ms")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--lut", type=Path, default=None, help="LUT file (default: fresh, in --out's folder)"
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/hw_lut_fidelity.json"))
    args = p.parse_args()

    space = create_space("nb201", channels=args.channels, cells_per_stage=args.cells)
    archs = space.sample_unique(np.random.default_rng(args.seed), args.n_archs)
    common = dict(batch_size=args.batch_size, energy=False)
    device = (
        CPUDevice(threads=args.threads, **common) if args.backend == "cpu" else CUDADevice(**common)
    )
    lut_path = args.lut or args.out.with_name(f"{args.out.stem}_lut.json")
    if args.lut is None and lut_path.exists():
        lut_path.unlink()  # time a fresh table: the build time is part of the figure
    load_start = load_average()

    t0 = time.perf_counter()
    lut = build_lut(((a, space.build_subnet(a)) for a in archs), device, lut_path, args.calibrate)
    build_wall_s = time.perf_counter() - t0

    rows = []
    for arch in archs:
        net = device.prepare(space.build_subnet(arch), device.torch_device)
        sigs = trace_ops(net, device.example_input(device.torch_device)).signatures
        m = device.metrics(arch, net)
        rows.append(
            {
                "arch": arch,
                "measured_ms": m["latency_ms"],
                "measured_iqr_ms": m["latency_iqr_ms"],
                "stable": m["latency_stable"],
                "predicted_ms": lut.predict(sigs),
                "op_sum_ms": lut.op_sum(sigs),
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
        "srcc": spearman(predicted, measured),
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
