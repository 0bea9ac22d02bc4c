"""Dynamic-OFA sub-network switch time: in process vs a process restart, in the same run.

In process (this repo's runtime, Dynamic-OFA section 3.3-3.4): ``RuntimeManager.switch`` =
``set_active(arch)`` + ``load_bn_state(bn)`` from BN tensors held in memory, timed over
``--switches`` switches between random levels of the family (each switch to another level),
median and p99, the two parts apart. Beside it: each member's BN file size and its
``safetensors`` load time from disk (warm page cache), and the first inference after a switch
against a steady one.

Process restart (the public code's way, 5-6 s there): a fresh ``python -c`` that imports torch
and the project, builds the supernet, loads the checkpoint, activates the arch, loads its BN
file and runs the first inference; wall time from spawn to exit, ``--restarts`` times, median.

One torch thread. Without ``--family`` a stand-in family is built (sampled archs of the
supernet, BN recalibrated on real images: ``search.dynamic_ofa.replay.stand_in_family``);
without ``--ckpt`` the (untrained) supernet is written to a checkpoint so the restart loads one.

    python benchmarks/dofa_switch.py [--family DIR] [--ckpt CKPT] [--processor cpu_1t]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hardware.runtime import RuntimeManager, load_family  # noqa: E402
from search.dynamic_ofa.replay import (  # noqa: E402
    build_space,
    datamodule,
    machine,
    space_from_config,
    stand_in_family,
)
from search.evaluators.supernet import load_supernet_weights  # noqa: E402

# The restarted process: everything a switch costs when it means a new process.
CHILD = """
import time
t0 = time.perf_counter()
import json, sys
import torch
torch.set_num_threads(1)
sys.path.insert(0, {repo!r})
from safetensors.torch import load_file
from search.dynamic_ofa.replay import build_space
from search.evaluators.supernet import load_supernet_weights
t1 = time.perf_counter()
meta = json.load(open({family!r} + "/family.json"))
level = meta["processors"][{processor!r}]["levels"][{index}]
net = build_space(meta["space"]).build_supernet()
load_supernet_weights(net, {ckpt!r})
net.eval()
t2 = time.perf_counter()
net.set_active(level["arch"])
net.load_bn_state(load_file({family!r} + "/bn/" + level["arch_id"] + ".safetensors"))
t3 = time.perf_counter()
res = max(meta["space"].get("resolutions", [32]))
with torch.inference_mode():
    net(torch.zeros(1, 3, res, res))
t4 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "build_load_ckpt_s": t2 - t1, "switch_s": t3 - t2,
                  "first_inference_s": t4 - t3}}))
"""


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def stats_ms(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": statistics.median(values),
        "p99_ms": pct(values, 99),
        "mean_ms": statistics.fmean(values),
        "max_ms": max(values),
        "n": len(values),
    }


def in_process(net, family, processor: str, switches: int, seed: int) -> dict:
    """Switch times over random level changes, and the first inference after a switch."""
    mgr = RuntimeManager(net, family, processor, level=1)
    n = len(mgr.levels)
    rng = np.random.default_rng(seed)
    for lv in range(1, n + 1):  # one untimed pass: first-touch of every path's buffers
        mgr.switch(lv)
    events = []
    for _ in range(switches):
        nxt = int(rng.integers(1, n))  # any other level, uniformly
        events.append(mgr.switch(nxt if nxt < mgr.level else nxt + 1))
    res = max(getattr(build_space(family.space), "resolutions", (32,)))
    x = torch.zeros(1, 3, res, res)
    first, steady = [], []
    for _ in range(min(100, switches)):
        nxt = int(rng.integers(1, n))
        mgr.switch(nxt if nxt < mgr.level else nxt + 1)
        first.append(mgr.infer(x)[1].latency_ms)
        for _ in range(2):
            mgr.infer(x)
        steady.append(mgr.infer(x)[1].latency_ms)
    return {
        "switch": stats_ms([e.switch_ms for e in events]),
        "set_active": stats_ms([e.set_active_ms for e in events]),
        "load_bn_state": stats_ms([e.load_bn_ms for e in events]),
        "first_inference_after_switch": stats_ms(first),
        "fourth_inference_after_switch": stats_ms(steady),
        "levels": n,
    }


def bn_files(family, processor: str, repeats: int = 20) -> dict:
    """Size of each member's BN file and its safetensors load time (warm page cache)."""
    out = []
    for lv in family.levels(processor):
        path = Path(family.path) / "bn" / f"{lv.arch_id}.safetensors"
        load_file(str(path))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            state = load_file(str(path))
            times.append((time.perf_counter() - t0) * 1e3)
        out.append(
            {
                "level": lv.level,
                "size_kb": path.stat().st_size / 1024,
                "tensors": len(state),
                "load_ms_median": statistics.median(times),
            }
        )
    return {
        "per_level": out,
        "size_kb_range": [min(o["size_kb"] for o in out), max(o["size_kb"] for o in out)],
        "load_ms_median_range": [
            min(o["load_ms_median"] for o in out),
            max(o["load_ms_median"] for o in out),
        ],
    }


def restart(family_dir: Path, processor: str, ckpt: str, n_levels: int, restarts: int) -> dict:
    """Wall time of a fresh process that does everything a switch then needs."""
    runs = []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for i in range(restarts):
        code = CHILD.format(
            repo=str(REPO),
            family=str(family_dir),
            processor=processor,
            index=i % n_levels,
            ckpt=str(ckpt),
        )
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"restart child failed:\n{proc.stderr[-2000:]}")
        runs.append({"wall_s": wall, **json.loads(proc.stdout.strip().splitlines()[-1])})
    walls = [r["wall_s"] for r in runs]
    return {"median_s": statistics.median(walls), "min_s": min(walls), "runs": runs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", help="family directory; none: a stand-in is built")
    p.add_argument("--ckpt", help="supernet checkpoint; none: the untrained supernet, saved")
    p.add_argument("--processor", default="cpu_1t")
    p.add_argument("--space", default=str(REPO / "conf/space/ofa_mbv3.yaml"))
    p.add_argument("--levels", type=int, default=6, help="stand-in family size")
    p.add_argument("--switches", type=int, default=1000)
    p.add_argument("--restarts", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks/results/dofa_switch.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="dofa_switch_"))
    if args.family is None:
        entry = space_from_config(args.space)
        space = build_space(entry)
        net = space.build_supernet().eval()
        if args.ckpt is not None:
            load_supernet_weights(net, args.ckpt)
        dm = datamodule(None, args.seed)
        family_dir = stand_in_family(
            net, space, {"name": space.name, **space.kwargs}, tmp / "family", args.processor,
            dm, levels=args.levels, candidates=3 * args.levels, pool=args.levels, bn_batches=2,
            val_batches=1, seed=args.seed, checkpoint=args.ckpt, chain=False,
        )  # fmt: skip
    else:
        family_dir = Path(args.family)
    family = load_family(family_dir, processors=[args.processor])
    space = build_space(family.space)
    net = space.build_supernet()
    ckpt = args.ckpt or family.meta.get("checkpoint")
    if ckpt and Path(ckpt).is_file():
        load_supernet_weights(net, ckpt)
        ckpt_note = f"trained checkpoint {ckpt}"
    else:
        ckpt = tmp / "untrained.ckpt"  # so the restart pays a checkpoint load too
        torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, ckpt)
        ckpt_note = "untrained supernet saved as a checkpoint (same size as a trained one)"
    net.eval()
    t0 = time.perf_counter()
    inproc = in_process(net, family, args.processor, args.switches, args.seed)
    inproc["wall_s"] = time.perf_counter() - t0
    files = bn_files(family, args.processor)
    restarts = restart(family_dir, args.processor, ckpt, len(family.levels(args.processor)),
                       args.restarts)  # fmt: skip
    m = machine()
    result = {
        "command": "python benchmarks/dofa_switch.py " + " ".join(sys.argv[1:]),
        "family": {
            "path": str(family_dir) if args.family else "stand-in (built by this run)",
            "kind": family.meta.get("kind", "given family"),
            "processor": args.processor,
            "levels": len(family.levels(args.processor)),
            "space": family.space,
        },
        "checkpoint": ckpt_note,
        "in_process": inproc,
        "bn_files": files,
        "process_restart": restarts,
        "speedup_restart_over_in_process": restarts["median_s"]
        * 1e3
        / inproc["switch"]["median_ms"],
        "reference": {
            "goal_in_process_ms": 5,
            "paper_switch_ms": 73,
            "paper_bn_load_ms": 2,
            "paper_bn_size_kb": 2,
            "public_code_restart_s": "5-6",
        },
        "machine": {**m, "loadavg_before": list(load_before), "loadavg_after": m["loadavg"]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    s = inproc["switch"]
    print(
        f"in process: switch median {s['median_ms']:.3f} ms, p99 {s['p99_ms']:.3f} ms "
        f"(set_active {inproc['set_active']['median_ms']:.3f}, load_bn_state "
        f"{inproc['load_bn_state']['median_ms']:.3f}); BN files "
        f"{files['size_kb_range'][0]:.1f}-{files['size_kb_range'][1]:.1f} KB, load "
        f"{files['load_ms_median_range'][0]:.3f}-{files['load_ms_median_range'][1]:.3f} ms; "
        f"restart median {restarts['median_s']:.2f} s -> {args.out}"
    )


if __name__ == "__main__":
    main()
