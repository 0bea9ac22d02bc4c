"""A trained supernet feeding search.py: the found front re-scored from the NAS-Bench-201 table.

Runs ``search.py evaluator=supernet`` (accuracy from the checkpoint's shared weights, latency
from the table's device column) with the given tactic and budget, then looks the final front's
architectures up in the table (true CIFAR-10 test accuracy, same latency) and reports their
hypervolume fraction against the table's true front, next to the same search with the table's
own accuracy (the ceiling a perfect accuracy source gives).

    python benchmarks/search_supernet.py --ckpt outputs/train/<run>/checkpoints/last.ckpt \
        --space-overrides space=nb201_cpu --budget 150 --tactic concurrent --device pixel3
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from search.analytics import ReferenceFront
from search.benchmarks import NB201Table
from search.pareto import to_minimization

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("search_script", REPO / "search.py")
search_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(search_script)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--ckpt", type=Path, required=True, help="train.py checkpoint (last.ckpt)")
    p.add_argument("--space-overrides", nargs="*", default=["space=nb201_cpu"])
    p.add_argument(
        "--data-overrides", nargs="*", default=[], help="e.g. evaluator.datamodule.data_dir=..."
    )
    p.add_argument("--budget", type=int, default=150)
    p.add_argument("--tactic", default="concurrent")
    p.add_argument("--device", default="pixel3", help="table latency column")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recal-batches", type=int, default=10)
    p.add_argument("--val-batches", type=int, default=20)
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def run(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("search", overrides=overrides)
    return search_script.search(cfg)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    table = NB201Table.bundled()
    lat_col = f"latency_ms_{args.device}"
    frame = table.frame.dropna(subset=[lat_col])
    frame = frame[frame["acc_cifar10_test"] > frame["acc_cifar10_test"].min()]  # no 10% cells
    true = ReferenceFront(
        to_minimization(frame[["acc_cifar10_test", lat_col]].to_numpy(), ["max", "min"])
    )
    common = [
        "logger=csv",
        "progress_bar=false",
        f"budget={args.budget}",
        f"tactic={args.tactic}",
        f"seed={args.seed}",
        f"objectives.latency.device={args.device}",
    ]
    out: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sup = run(
            [
                *common,
                f"paths.output_dir={tmp}/supernet",
                "evaluator=supernet",
                f"evaluator.ckpt_path={args.ckpt}",
                f"evaluator.recal_batches={args.recal_batches}",
                f"evaluator.val_batches={args.val_batches}",
                *args.space_overrides,
                *args.data_overrides,
            ]
        )
        wall = time.perf_counter() - t0
        archs = [e["arch"] for e in sup["front"]]
        F = to_minimization(
            np.c_[table.values(archs, "acc_cifar10_test"), table.values(archs, lat_col)],
            ["max", "min"],
        )
        ceiling = run([*common, f"paths.output_dir={tmp}/table"])
    out.update(
        supernet_front_size=len(archs),
        supernet_front_true_hv_fraction=true.hv_fraction(F),
        supernet_front_true_report=true.report(F),
        table_accuracy_hv_fraction=ceiling.get("hv_fraction"),
        n_validated=sup["n_validated"],
        wall_s=wall,
        load_after=os.getloadavg(),
        machine=platform.platform(),
        front=sup["front"],
    )
    print(
        f"supernet accuracy, {args.tactic} @ {args.budget}: front of {len(archs)}, true HV "
        f"fraction {out['supernet_front_true_hv_fraction']:.3f} (table accuracy: "
        f"{out['table_accuracy_hv_fraction']:.3f}), {wall:.0f} s"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2, default=float))
    return out


if __name__ == "__main__":
    main()
