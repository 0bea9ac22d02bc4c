"""Build or resume a latency LUT (hardware.lut) for random architectures of a registered space.

Resumable: rerun the same command to continue where it stopped::

    python -m search.lut_cli --space nb201 --channels 16 --cells 5 --n-archs 200 \
        --threads 2 --calibrate 10 --out luts/nb201_c16_n5_cpu.json
    python -m search.lut_cli --space ofa_mbv3 --space-arg width_mult=0.5 --n-archs 100 \
        --out luts/ofa_mbv3_cpu.json

It lives in ``search`` (not ``hardware``) because it needs the space registry; ``hardware``
imports none of the project's other packages.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hardware.lut import build_lut
from hardware.measure import CPUDevice, CUDADevice
from search.spaces import create_space


def main(argv: Sequence[str] | None = None) -> None:
    """Build or resume a LUT for random architectures of a registered search space."""
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--space", default="nb201", help="registered search space")
    p.add_argument("--channels", type=int, default=None, help="nb201: cell channels (16)")
    p.add_argument("--cells", type=int, default=None, help="nb201: cells per stage (5)")
    p.add_argument(
        "--space-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a builder argument of the space (VALUE is YAML), e.g. width_mult=0.5; repeatable",
    )
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

    space = create_space(args.space, **space_kwargs(args))
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


def space_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Builder arguments of the space from ``--space-arg`` (and NAS-Bench-201's own flags)."""
    kwargs: dict[str, Any] = {}
    for item in args.space_arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--space-arg {item!r}: expected KEY=VALUE, e.g. width_mult=0.5")
        kwargs[key] = yaml.safe_load(value)
    for key, value in (("channels", args.channels), ("cells_per_stage", args.cells)):
        if value is not None:
            kwargs[key] = value
    return kwargs


if __name__ == "__main__":
    main()
