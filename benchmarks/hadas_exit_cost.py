"""Exit-training cost per backbone with and without the feature cache (HADAS IV-B2), same run.

Both variants train the same exits (eq. 4, all candidates) for the same epochs on the same
un-augmented train images of the embedded CIFAR-10 subset; without the cache the frozen backbone
runs every step, with it once. One torch thread; the load average is recorded beside the times.

    PYTHONPATH=. python benchmarks/hadas_exit_cost.py --channels 8 --cells 5 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from datamodules.cifar import CIFARDataModule
from lightning_modules.multi_exit import ExitPipeline
from search.spaces import create_space

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-train-images", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/hadas_exit_cost.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = create_space("nb201", channels=args.channels, cells_per_stage=args.cells)
    data = CIFARDataModule(data_dir=None, max_train_images=args.max_train_images)
    rows = []
    for arch in ARCHS:
        row = {"arch": arch, "load_avg_before": os.getloadavg()}
        for cached in (False, True):
            pipe = ExitPipeline(
                space, data, backbone_epochs=0, exit_epochs=args.epochs, feature_cache=cached
            )
            net = pipe.build(arch)
            start = time.perf_counter()
            parts = pipe.train_exits(net, arch)
            parts["total_s"] = time.perf_counter() - start
            row["cached" if cached else "images"] = parts
        row["speedup"] = row["images"]["total_s"] / row["cached"]["total_s"]
        row["load_avg_after"] = os.getloadavg()
        rows.append(row)
        print(json.dumps(row))
    result = {
        "command": f"python benchmarks/hadas_exit_cost.py --channels {args.channels} --cells "
        f"{args.cells} --epochs {args.epochs} --max-train-images {args.max_train_images}",
        "threads": 1,
        "train_images": len(data._splits["train"]),
        "positions": list(pipe.build(ARCHS[0]).positions),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
