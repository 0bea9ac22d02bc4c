"""HADAS bi-level search on NAS-Bench-201 backbones x exits x Jetson TX2 DVFS, at a CPU budget.

Outer NSGA-II over backbones on the table (CIFAR-10 valid accuracy, edgegpu = TX2 latency and
energy); for up to ``--backbones`` outer-front backbones: a CPU-width copy (C=8, N=5: the same
17 blocks as the table's network, so exits sit at the table's blocks 5..16) pretrained briefly
on the embedded CIFAR-10 subset, exits trained with eq. 4 on the frozen backbone from cached
features, and an inner NSGA-II over exits x (GPU, EMC) levels. Resumable (``--resume``).

    PYTHONPATH=. python benchmarks/hadas_nb201_tx2.py --out benchmarks/results/hadas_nb201_tx2
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from datamodules.cifar import CIFARDataModule
from hardware.dvfs import DvfsModel
from lightning_modules.multi_exit import ExitPipeline
from search.hadas import run_hadas
from search.spaces import create_space

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/hadas_nb201_tx2")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--backbone-epochs", type=int, default=2)
    parser.add_argument("--exit-epochs", type=int, default=4)
    parser.add_argument("--max-train-images", type=int, default=2000)
    parser.add_argument("--outer-budget", type=int, default=100)
    parser.add_argument("--backbones", type=int, default=3)
    parser.add_argument("--inner-budget", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    hw = OmegaConf.load(REPO / "conf/hardware/dvfs_jetson_tx2.yaml").model
    params = {k: v for k, v in OmegaConf.to_container(hw).items() if k != "_target_"}
    dvfs = DvfsModel(instantiate(OmegaConf.load(REPO / "conf/dvfs/jetson_tx2.yaml")), **params)
    data = CIFARDataModule(data_dir=None, max_train_images=args.max_train_images)
    pipeline = ExitPipeline(
        create_space("nb201", channels=args.channels, cells_per_stage=5),
        data,
        first_block=5,
        backbone_epochs=args.backbone_epochs,
        exit_epochs=args.exit_epochs,
        seed=args.seed,
        cache_dir=args.out / "weights",
    )
    start, load = time.perf_counter(), os.getloadavg()
    summary = run_hadas(
        pipeline,
        list(data._loader("valid", 1)),  # batch 1: measured latency is per sample
        dvfs,
        args.out,
        outer_budget=args.outer_budget,
        max_backbones=args.backbones,
        inner_budget=args.inner_budget,
        seed=args.seed,
        resume=args.resume,
        settings=pipeline.settings(),
        test_batches=list(data._loader("test", 1)),  # the controller's figures: held-out test
    )
    summary["run"] = {
        "command": "python benchmarks/hadas_nb201_tx2.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if k not in ("out", "resume")
        ),
        "wall_s": time.perf_counter() - start,
        "load_avg_before": load,
        "load_avg_after": os.getloadavg(),
        "pipeline": pipeline.settings(),
        "timings": pipeline.timings,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary["at_equal_accuracy"], indent=1))
    print(json.dumps(summary.get("dynamic_vs_static"), indent=1))


if __name__ == "__main__":
    main()
