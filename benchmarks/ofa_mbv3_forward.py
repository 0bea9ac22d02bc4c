"""OFA MobileNetV3: batch-1 latency of the supernet's active path vs its extracted sub-network,
and the cost of ``set_active`` (a sub-network switch without BN statistics).

For the min, one random (mid) and the max architecture at the given resolution, the supernet
with that path active and the extracted standalone sub-network are timed in interleaved passes
(A, B, A, B, ...: each pass is ``--calls`` forward calls, in inference mode), so drift and the
other processes on the machine hit both alike; the figure is the median over passes of the
per-call mean. ``set_active`` is timed over 1,000 switches between random architectures, and
``set_active`` + ``load_bn_state`` (the runtime manager's whole in-process switch) over 1,000
switches within a family of 7 members. The load average is recorded before and after.

    OMP_NUM_THREADS=1 python benchmarks/ofa_mbv3_forward.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from hardware.base import cpu_model_name, load_average
from search.spaces import create_space


def _pass_ms(net: torch.nn.Module, x: torch.Tensor, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        net(x)
    return (time.perf_counter() - t0) * 1e3 / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--width-mult", type=float, default=0.5)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--passes", type=int, default=30, help="interleaved passes per network")
    parser.add_argument("--calls", type=int, default=20, help="forward calls per pass")
    parser.add_argument("--switches", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/ofa_mbv3_forward.json")
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    space = create_space("ofa_mbv3", width_mult=args.width_mult)
    net = space.build_supernet().eval()
    x = torch.randn(1, 3, args.resolution, args.resolution)
    load_before = load_average()

    archs = {"min": space.min_arch(), "mid": space.sample(rng), "max": space.max_arch()}
    forward = {}
    with torch.inference_mode():
        for name, arch in archs.items():
            arch = space.parse({**arch, "resolution": args.resolution})
            net.set_active(arch)
            sub = net.extract_subnet(arch).eval()
            err = (net(x) - sub(x)).abs().max().item()
            for _ in range(3):  # warm-up (also fills the supernet's slice cache)
                _pass_ms(net, x, args.calls)
                _pass_ms(sub, x, args.calls)
            sup_ms, sub_ms = [], []
            for _ in range(args.passes):
                sup_ms.append(_pass_ms(net, x, args.calls))
                sub_ms.append(_pass_ms(sub, x, args.calls))
            forward[name] = {
                "arch": arch,
                "supernet_ms_median": float(np.median(sup_ms)),
                "subnet_ms_median": float(np.median(sub_ms)),
                "ratio_median": float(np.median(np.array(sup_ms) / np.array(sub_ms))),
                "supernet_ms_iqr": [float(v) for v in np.percentile(sup_ms, [25, 75])],
                "subnet_ms_iqr": [float(v) for v in np.percentile(sub_ms, [25, 75])],
                "max_abs_output_diff": err,
                "subnet_params": sum(p.numel() for p in sub.parameters()),
            }
            print(
                f"{name}: supernet {forward[name]['supernet_ms_median']:.3f} ms, "
                f"subnet {forward[name]['subnet_ms_median']:.3f} ms, "
                f"ratio {forward[name]['ratio_median']:.3f}"
            )

    targets = space.sample(rng, args.switches)
    switch_us = []
    for arch in targets:
        t0 = time.perf_counter()
        net.set_active(arch)
        switch_us.append((time.perf_counter() - t0) * 1e6)
    switch = {
        "n": len(switch_us),
        "median_us": float(np.median(switch_us)),
        "p99_us": float(np.percentile(switch_us, 99)),
        "max_us": float(np.max(switch_us)),
    }
    print(f"set_active: median {switch['median_us']:.1f} us, p99 {switch['p99_us']:.1f} us")

    # The whole in-process switch of the runtime (activate + load that member's BN statistics),
    # over a family of 7 members with their own statistics (as the paper's ladder).
    family = space.sample(rng, 7)
    stats = []
    for arch in family:
        net.set_active(arch)
        stats.append(net.bn_state())
    full_us = []
    for _ in range(args.switches):
        k = int(rng.integers(len(family)))
        t0 = time.perf_counter()
        net.set_active(family[k])
        net.load_bn_state(stats[k])
        full_us.append((time.perf_counter() - t0) * 1e6)
    switch_bn = {
        "n": len(full_us),
        "members": len(family),
        "median_us": float(np.median(full_us)),
        "p99_us": float(np.percentile(full_us, 99)),
        "max_us": float(np.max(full_us)),
        "bn_tensors_per_member": [len(s) for s in stats],
        "bn_bytes_per_member": [
            sum(t.numel() * t.element_size() for t in s.values()) for s in stats
        ],
    }
    print(
        f"set_active + load_bn_state: median {switch_bn['median_us']:.1f} us, "
        f"p99 {switch_bn['p99_us']:.1f} us"
    )

    result = {
        "forward": forward,
        "set_active": switch,
        "set_active_and_load_bn_state": switch_bn,
        "settings": {
            "space": {"name": "ofa_mbv3", **space.kwargs},
            "supernet_params": sum(p.numel() for p in net.parameters()),
            "resolution": args.resolution,
            "batch": 1,
            "threads": args.threads,
            "passes": args.passes,
            "calls_per_pass": args.calls,
            "seed": args.seed,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu": cpu_model_name() or platform.processor() or None,
            "machine": platform.machine(),
            "loadavg_before": load_before,
            "loadavg_after": load_average(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
