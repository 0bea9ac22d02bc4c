"""Latency monotonicity on the NAS-Bench-201 table: SRCC matrix over all devices and a heatmap.

Also the proxy a 50-architecture sample would pick (One-Proxy section 5.3.1) and, for the
default proxy pixel3, how well 30 and 50 sampled architectures estimate each pair's SRCC
(mean and std over 1000 draws, Fig. 11(b, c)). ``--wandb`` logs the heatmap to an offline run.

    python benchmarks/hw_monotonicity.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.monotonicity import (  # noqa: E402
    estimate_srcc,
    plot_srcc_heatmap,
    select_proxy,
    srcc_matrix,
)
from search.benchmarks import NB201Table  # noqa: E402
from search.benchmarks.latencies import table_latencies  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--proxy", default="pixel3")
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--sample", type=int, default=50, help="archs for the sampled proxy choice")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--wandb", action="store_true", help="log the heatmap to W&B (offline mode)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/hw_monotonicity.json"))
    args = p.parse_args()

    table = NB201Table.bundled()
    lat = table_latencies(table)
    matrix = srcc_matrix(lat)
    png = plot_srcc_heatmap(
        matrix, args.out.with_suffix(".png"), f"Latency SRCC, NAS-Bench-201 ({len(lat)} archs)"
    )
    rng = np.random.default_rng(args.seed)
    full = lat.dropna()  # archs measured on every device, for the sampled choice
    sample = full.iloc[rng.choice(len(full), args.sample, replace=False)]
    estimates = {
        dev: {n: estimate_srcc(lat[args.proxy], lat[dev], n, rng, draws=1000) for n in (30, 50)}
        for dev in lat.columns
        if dev != args.proxy
    }
    off = matrix.to_numpy()[~np.eye(len(matrix), dtype=bool)]
    doc = {
        "benchmark": "hw_monotonicity",
        "devices": list(matrix.index),
        "srcc": matrix.round(4).to_dict(),
        "offdiag_min": float(off.min()),
        "offdiag_median": float(np.median(off)),
        "pairs_ge_threshold": int((off >= args.threshold).sum() // 2),
        "pairs": int(len(off) // 2),
        "proxy_full": select_proxy(matrix, args.threshold),
        "proxy_from_sample": {
            **select_proxy(srcc_matrix(sample), args.threshold),
            "n_archs": args.sample,
        },
        "estimates_vs_proxy": {"proxy": args.proxy, "by_device": estimates},
        "heatmap": str(png),
    }
    doc["proxy_full"]["ranking"] = doc["proxy_full"]["ranking"][:5]
    doc["proxy_from_sample"]["ranking"] = doc["proxy_from_sample"]["ranking"][:5]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    if args.wandb:
        import os

        import wandb

        run = wandb.init(
            project="hwnas",
            job_type="hw_monotonicity",
            mode=os.environ.get("WANDB_MODE", "offline"),
        )
        try:
            run.log({"hw/srcc_heatmap": wandb.Image(str(png))})
        finally:
            run.finish()
    print(
        json.dumps(
            {
                k: doc[k]
                for k in ("offdiag_min", "offdiag_median", "pairs_ge_threshold", "pairs", "heatmap")
            }
        )
    )
    print(
        json.dumps(
            {
                "proxy_full": doc["proxy_full"]["proxy"],
                "proxy_from_sample": doc["proxy_from_sample"]["proxy"],
            }
        )
    )


if __name__ == "__main__":
    main()
