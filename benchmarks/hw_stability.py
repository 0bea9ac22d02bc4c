"""Measurement stability: one architecture measured N times in one run; spread of the medians.

Each repetition is a full measurement (warm-up, repeat until the median settles) of the same
network; the figure is ``(max - min) / median`` of the N medians (target: within 3%), with
their coefficient of variation. Timing-sensitive: run on a quiet machine (load is recorded).

    python benchmarks/hw_stability.py --threads 2 --repeats 10
    python benchmarks/hw_stability.py --backend cuda --repeats 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

# Multi-thread CPU timing needs OpenMP workers that spin between ops (hardware.measure's
# omp_wait_policy); the runtime reads this when torch loads, so it is set before that.
os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")

# Run from a plain checkout too (the device machine may not have the package installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.base import load_average  # noqa: E402
from hardware.measure import CPUDevice, CUDADevice  # noqa: E402
from search.benchmarks import NB201Table  # noqa: E402
from search.spaces import create_space  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--index", type=int, default=6111, help="NAS-Bench-201 index (best CIFAR-10 cell)"
    )
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backend", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--min-time-s", type=float, default=1.0, help="timed seconds per measurement (at least)"
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/hw_stability.json"))
    args = p.parse_args()

    arch = NB201Table.bundled().arch_of(args.index)
    space = create_space("nb201", channels=args.channels, cells_per_stage=args.cells)
    common = dict(batch_size=args.batch_size, energy=False, min_time_s=args.min_time_s)
    device = (
        CPUDevice(threads=args.threads, **common) if args.backend == "cpu" else CUDADevice(**common)
    )
    net = space.build_subnet(arch)
    load_start = load_average()
    runs = [device.metrics(arch, net) for _ in range(args.repeats)]
    medians = np.array([r["latency_ms"] for r in runs])
    doc = {
        "benchmark": "hw_stability",
        "arch": arch,
        "device": device.settings(),
        "medians_ms": medians.tolist(),
        "iqr_ms": [r["latency_iqr_ms"] for r in runs],
        "counts": [r["latency_count"] for r in runs],
        "stable": [r["latency_stable"] for r in runs],
        "spread_percent": float((medians.max() - medians.min()) / np.median(medians) * 100),
        "cv_percent": float(medians.std(ddof=1) / medians.mean() * 100),
        "load_average_start": load_start,
        "load_average_end": load_average(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
