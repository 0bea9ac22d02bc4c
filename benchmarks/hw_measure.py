"""Measured latency (and energy where readable) of NAS-Bench-201 networks on CPU or CUDA, as JSON.

Runs the measured devices of ``hardware/measure/`` on a few random NAS-Bench-201 networks
(C=16, N=5) or any torchvision model, at one or more batch sizes, and prints one JSON document
(also written to ``--out``). On a GPU machine (needs ``pip install nvidia-ml-py`` for energy):

    python benchmarks/hw_measure.py --backend cuda --batch-sizes 1 32 256
    python benchmarks/hw_measure.py --backend cpu --threads 2
    python benchmarks/hw_measure.py --backend cuda --model resnet18 --resolution 224
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

import torch  # noqa: E402

# Run from a plain checkout too (the GPU machine may not have the package installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.base import load_average  # noqa: E402
from hardware.measure import CPUDevice, CUDADevice  # noqa: E402
from search.spaces import create_space  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--model", default="nb201", help="nb201 or a torchvision model name")
    p.add_argument("--n-archs", type=int, default=3, help="random NB201 archs (model=nb201)")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=5)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1])
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="CPU backend only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/hw_measure.json"))
    args = p.parse_args()

    if args.model == "nb201":
        space = create_space("nb201", channels=args.channels, cells_per_stage=args.cells)
        archs = space.sample_unique(np.random.default_rng(args.seed), args.n_archs)
        models = [(a, lambda a=a: space.build_subnet(a)) for a in archs]
    else:
        import torchvision

        models = [(args.model, lambda: torchvision.models.get_model(args.model, weights=None))]

    results = []
    t0 = time.perf_counter()
    for batch in args.batch_sizes:
        common = dict(batch_size=batch, resolution=args.resolution)
        if args.backend == "cpu":
            device = CPUDevice(threads=args.threads, **common)
        else:
            device = CUDADevice(**common)
        for name, build in models:
            torch.manual_seed(args.seed)
            results.append(device.metrics(name, build()))
    doc = {
        "benchmark": "hw_measure",
        "backend": args.backend,
        "model": args.model,
        "seconds": round(time.perf_counter() - t0, 2),
        "load_average_end": load_average(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
