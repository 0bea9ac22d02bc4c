"""Whole-network timing repeatability under the current OpenMP settings (no LUT).

Measures ``--n-archs`` random NAS-Bench-201 networks in ``--passes`` interleaved passes and
prints the SRCC between every two passes and each pass's mean latency. Run it under different
``OMP_WAIT_POLICY`` values (the OpenMP runtime reads it when torch loads, so set it on the
command line; this script does not set it):

    python benchmarks/hw_repeatability.py --threads 2
    OMP_WAIT_POLICY=PASSIVE python benchmarks/hw_repeatability.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.base import load_average  # noqa: E402
from hardware.measure import (  # noqa: E402
    CPUDevice,
    measure_in_passes,
    omp_wait_policy,
    pass_agreement,
)
from search.spaces import create_space  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n-archs", type=int, default=40)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--min-time-s", type=float, default=0.2)
    p.add_argument("--min-repeats", type=int, default=40)
    args = p.parse_args()

    space = create_space("nb201", channels=16, cells_per_stage=5)
    archs = space.sample_unique(np.random.default_rng(0), args.n_archs)
    device = CPUDevice(
        threads=args.threads,
        batch_size=1,
        energy=False,
        min_time_s=args.min_time_s,
        min_repeats=args.min_repeats,
    )
    nets = [(a, device.prepare(space.build_subnet(a), device.torch_device)) for a in archs]
    start = time.time()
    runs = measure_in_passes(device, nets, args.passes, seed=1)
    A = np.array([[m["latency_ms"] for m in run] for run in runs])  # (networks, passes)
    print(
        json.dumps(
            {
                "omp_wait_policy": omp_wait_policy(),
                "threads": args.threads,
                "mean_ms": float(A.mean()),
                **pass_agreement(A),
                "wall_s": round(time.time() - start, 1),
                "load_average": load_average(),
            }
        )
    )


if __name__ == "__main__":
    main()
