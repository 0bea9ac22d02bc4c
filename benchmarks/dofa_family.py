"""Dynamic-OFA family vs a random sample of the same supernet, per processor (issue 11).

For a finished ``search.py experiment=ofa_mbv3_family`` run: the family's members, top-1 and
latency ranges (re-measured: BN from 2,000 training images, the whole valid split, the full
timing protocol), and the hypervolume of the family against ``--n-random`` uniformly random
sub-networks of the same supernet, both scored by the same search-time sources (accuracy from
shared weights with the same recalibration batches, latency from the same predict device) and
normalised to one box with one reference point per processor; the random sample's own front
too. Also the BN files' size and load time. Evaluations go to the run's archive, so a rerun
continues the random sample where it stopped::

    python benchmarks/dofa_family.py --run <run dir> --n-random 1000 \
        --out benchmarks/results/dofa_family.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from search.dynamic_ofa.family import family_hypervolume
from search.dynamic_ofa.levels import front_indices
from search.dynamic_ofa.setup import build_family_search, data_summary


def bn_figures(artifact: Path, arch_ids: set[str], repeats: int = 50) -> dict:
    """Size (KB) and load time (ms, median of ``repeats`` loads) of the members' BN files."""
    files = [artifact / "bn" / f"{a}.safetensors" for a in sorted(arch_ids)]
    sizes = [f.stat().st_size / 1024 for f in files]
    times = []
    for f in files:
        load_file(str(f))  # page cache warm, as at runtime after the family is loaded once
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            load_file(str(f))
            runs.append((time.perf_counter() - t0) * 1e3)
        times.append(statistics.median(runs))
    return {
        "n_files": len(files),
        "size_kb_mean": statistics.mean(sizes),
        "size_kb_max": max(sizes),
        "load_ms_median": statistics.median(times),
        "load_ms_max": max(times),
        "load_repeats": repeats,
    }


def member_ids(artifact: Path) -> set[str]:
    """arch_ids of every processor's levels in ``family.json``."""
    doc = json.loads((artifact / "family.json").read_text())
    return {lv["arch_id"] for p in doc["processors"].values() for lv in p["levels"]}


def wait_for(path: Path, timeout_s: float) -> dict:
    """The JSON at ``path``, waiting up to ``timeout_s`` for it to appear."""
    deadline = time.time() + timeout_s
    while not path.is_file():
        if time.time() > deadline:
            raise FileNotFoundError(f"{path} did not appear within {timeout_s:.0f} s")
        time.sleep(5)
    return json.loads(path.read_text()) if path.suffix == ".json" else {}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="the family run directory")
    p.add_argument("--n-random", type=int, default=1000, help="random sub-networks sampled")
    p.add_argument("--seed", type=int, default=1, help="seed of the random sample")
    p.add_argument("--threads", type=int, default=1, help="torch threads for accuracy")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/dofa_family.json"))
    p.add_argument(
        "--deadline-s",
        type=float,
        default=None,
        help="stop drawing random sub-networks this many seconds after the first (the report "
        "says how "
        "many were scored; a rerun continues from the archive)",
    )
    p.add_argument(
        "--wait-s",
        type=float,
        default=0.0,
        help="wait this long for the run's summary.json (the family search may still run: the "
        "random sample is evaluated meanwhile)",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    wait_for(args.run / "config_resolved.yaml", args.wait_s)  # written as the search starts
    cfg = OmegaConf.load(args.run / "config_resolved.yaml")
    cfg.resume = "auto"
    family, skipped = build_family_search(cfg, args.run)
    space = family.space
    sample = space.sample_unique(np.random.default_rng(args.seed), args.n_random)
    keys = [space.serialize(a) for a in sample]
    t0 = time.time()
    lat = {p.name: family._latency_cache(p.name, p.predict, "predicted") for p in family.processors}
    acc: dict[str, float] = {}
    for k in keys:  # one sub-network at a time: a deadline leaves complete points only
        if args.deadline_s is not None and time.time() - t0 > args.deadline_s:
            break
        acc[k] = family.acc(k)["acc_top1"]
        for cache in lat.values():
            cache(k)
    keys = list(acc)
    acc_s = time.time() - t0
    if not keys:
        raise SystemExit(f"no random sub-network scored within --deadline-s {args.deadline_s}")
    summary = wait_for(args.run / "summary.json", args.wait_s)
    out = {
        "command": " ".join(["python", *sys.argv]),
        "run": str(args.run),
        "checkpoint": summary["checkpoint"],
        "data": data_summary(family),
        "n_random_requested": args.n_random,
        "n_random": len(keys),
        "random_sample_s": acc_s,
        "random_computed": {
            "accuracy": family.acc.computed,
            **{n: c.computed for n, c in lat.items()},
        },
        "load_average": list(os.getloadavg()),
        "skipped_processors": skipped,
        "bn": bn_figures(family.artifact, member_ids(family.artifact)),
        "processors": {},
    }
    for proc in family.processors:
        rnd = np.array([[acc[k], lat[proc.name](k)["latency_ms"]] for k in keys])
        rnd_front = rnd[front_indices(rnd[:, 0], rnd[:, 1])]
        s = summary["processors"][proc.name]
        levels = s["levels"]
        fam = np.array([[lv["search_acc_top1"], lv["search_latency_ms"]] for lv in levels])
        hv, box = family_hypervolume({"family": fam, "random": rnd})
        out["processors"][proc.name] = {
            "n_members": len(levels),
            "acc_top1_range": s["acc_top1_range"],
            "latency_ms_range": s["latency_ms_range"],
            "levels": [
                {
                    k: lv[k]
                    for k in (
                        "level",
                        "arch_id",
                        "acc_top1",
                        "latency_ms",
                        "search_acc_top1",
                        "search_latency_ms",
                    )
                }
                for lv in levels
            ],  # fmt: skip
            "hypervolume_family": hv["family"],
            "hypervolume_random": hv["random"],
            "hv_reference": "(-acc, latency) normalised to the union's box, reference (1.1, 1.1)",
            "hv_box": box,
            "random_front": rnd_front.tolist(),
            "random_acc_top1_range": [float(rnd[:, 0].min()), float(rnd[:, 0].max())],
            "random_latency_ms_range": [float(rnd[:, 1].min()), float(rnd[:, 1].max())],
            "latency_source": f"search: {type(proc.predict).__name__} short protocol; family "
            "figures re-measured with the full protocol",
            "device": s["device"],
        }
    out["family_search_wall_time_s"] = summary["wall_time_s"]
    out["benchmark_wall_time_s"] = time.time() - start
    family.archive.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=float))
    print(json.dumps({k: v for k, v in out.items() if k != "processors"}, indent=1, default=float))
    for name, p in out["processors"].items():
        print(name, {k: p[k] for k in ("n_members", "acc_top1_range", "latency_ms_range",
                                       "hypervolume_family", "hypervolume_random")})  # fmt: skip


if __name__ == "__main__":
    main()
