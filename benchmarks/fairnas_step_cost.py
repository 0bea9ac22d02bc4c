"""Cost of one FairNAS step relative to m standalone sub-network steps, measured side by side.

A FairNAS step trains m paths (one forward/backward each, gradients accumulated) and makes one
optimizer update. The reference is the same m paths extracted as standalone networks, each
given one ordinary training step (forward, backward, update) on the same batch. The ratio
``t_fairnas / sum_k t_standalone_k`` is ``t_fairnas / (m * mean standalone step)``; 1.0 means the
supernet adds no overhead. Measurements alternate (A, B, A, B, ...) so drift hits both alike.

    python benchmarks/fairnas_step_cost.py --channels 16 --cells 5 --threads 2 --repeats 15
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lightning_modules.samplers import FairSampler
from search.spaces import create_space
from search.spaces.nb201 import arch_str


def fairnas_step(net, opt, paths, x, y) -> None:
    opt.zero_grad(set_to_none=True)
    for ops in paths:
        net.set_active(ops)
        nn.functional.cross_entropy(net(x), y).backward()
    opt.step()


def standalone_step(net, opt, x, y) -> None:
    opt.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(net(x), y).backward()
    opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/fairnas_step_cost.json")
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    fmt = torch.channels_last  # as in training (model.channels_last: true)
    space = create_space("nb201", channels=args.channels, cells_per_stage=args.cells)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    supernet = space.build_supernet().to(device, memory_format=fmt)
    sampler = FairSampler(supernet.candidates, np.random.default_rng(args.seed))
    x = torch.randn(args.batch, 3, 32, 32, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (args.batch,), device=device)
    sgd = dict(lr=0.01, momentum=0.9, weight_decay=5e-4)

    ratios, fair_times, sub_times = [], [], []
    load_before = os.getloadavg()
    for rep in range(args.repeats + 2):  # the first two rounds warm up allocators and caches
        paths = sampler.paths()
        subnets = [supernet.extract_subnet(arch_str(ops)).to(memory_format=fmt) for ops in paths]
        sub_opts = [torch.optim.SGD(s.parameters(), **sgd) for s in subnets]
        opt = torch.optim.SGD(supernet.parameters(), **sgd)
        sync()
        t0 = time.perf_counter()
        fairnas_step(supernet, opt, paths, x, y)
        sync()
        t_fair = time.perf_counter() - t0
        t_sub = 0.0
        for net, sub_opt in zip(subnets, sub_opts, strict=True):
            t0 = time.perf_counter()
            standalone_step(net, sub_opt, x, y)
            sync()
            t_sub += time.perf_counter() - t0
        if rep >= 2:
            ratios.append(t_fair / t_sub)
            fair_times.append(t_fair)
            sub_times.append(t_sub)

    result = {
        "ratio_median": float(np.median(ratios)),
        "ratio_iqr": [float(np.percentile(ratios, 25)), float(np.percentile(ratios, 75))],
        "fairnas_step_ms_median": 1000 * float(np.median(fair_times)),
        "m_standalone_steps_ms_median": 1000 * float(np.median(sub_times)),
        "m": sampler.m,
        "repeats": args.repeats,
        "settings": {
            "channels": args.channels,
            "cells_per_stage": args.cells,
            "batch": args.batch,
            "threads": args.threads,
            "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "memory_format": "channels_last",
            "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
