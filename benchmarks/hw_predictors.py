"""Predictor analysis on the NAS-Bench-201 table (Intel HW-NAS paper, section 5.4).

MAPE and Kendall tau vs number of training samples (100..1000) over 10 random splits (test set
of 500 per split) for accuracy (ridge, SVR, MLP) and latency (ridge, SVR, MLP, LUT-sum), saved
as JSON, a markdown table and a plot. By default only connected cells are used: the 341
disconnected ones output zeros (10% accuracy, near-zero HW-NAS-Bench latency), which no search
would pick and which make MAPE meaningless (``--all-archs`` keeps them).

    python benchmarks/hw_predictors.py
    python benchmarks/hw_predictors.py --trials 2 --sizes 100 500   # quick look
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.benchmarks import NB201Table  # noqa: E402
from search.predictor_analysis import KINDS, learning_curves, summarize_curves  # noqa: E402
from search.predictors import PREDICTORS  # noqa: E402
from search.spaces import create_space  # noqa: E402
from search.spaces.nb201 import is_connected  # noqa: E402


def plot(summary, targets, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = dict(zip(KINDS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    fig, axes = plt.subplots(2, len(targets), figsize=(4.2 * len(targets), 6.5), squeeze=False)
    for j, target in enumerate(targets):
        sub = summary[summary["target"] == target]
        for kind, g in sub.groupby("kind"):
            for i, metric in enumerate(("mape", "kendall_tau")):
                axes[i, j].errorbar(
                    g["n_train"],
                    g[f"{metric}_mean"],
                    yerr=g[f"{metric}_std"],
                    label=kind,
                    marker="o",
                    ms=3,
                    capsize=2,
                    color=colors[kind],
                )
        axes[0, j].set_title(target, fontsize=9)
        axes[0, j].set_ylabel("MAPE (%)")
        axes[1, j].set_ylabel("Kendall tau")
        axes[1, j].set_xlabel("training samples")
        axes[0, j].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--targets",
        nargs="+",
        default=["acc_cifar10_test", "latency_ms_pixel3", "latency_ms_edgegpu"],
    )
    p.add_argument("--sizes", type=int, nargs="+", default=list(range(100, 1001, 100)))
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--test-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--all-archs", action="store_true", help="keep disconnected cells")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/hw_predictors.json"))
    args = p.parse_args()

    table = NB201Table.bundled()
    space = create_space("nb201")
    archs = [a for a in table.frame["arch_str"] if args.all_archs or is_connected(a)]
    X = np.stack([space.encode(a) for a in archs])
    num_choices = [len(c) for c in space.decisions.values()]
    frames = []
    t0 = time.perf_counter()
    for target in args.targets:
        kinds = KINDS if target.startswith("latency") else PREDICTORS  # LUT-sum is for latency
        y = table.values(archs, target)
        curves = learning_curves(
            X, y, num_choices, kinds, args.sizes, args.trials, args.test_size, args.seed
        )
        curves["target"] = target
        frames.append(curves)
        print(f"{target}: done after {time.perf_counter() - t0:.0f} s", flush=True)
    import pandas as pd

    curves = pd.concat(frames, ignore_index=True)
    summary = pd.concat(
        [summarize_curves(c).assign(target=c["target"].iloc[0]) for c in frames], ignore_index=True
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(summary, args.targets, args.out.with_suffix(".png"))
    show = sorted({args.sizes[0], args.sizes[len(args.sizes) // 2 - 1], args.sizes[-1]})
    md = [
        "| target | predictor | " + " | ".join(f"MAPE % / tau @ {n}" for n in show) + " |",
        "|---|---|" + "---|" * len(show),
    ]
    for (target, kind), g in summary.groupby(["target", "kind"], sort=False):
        g = g.set_index("n_train")
        cells = [f"{g.at[n, 'mape_mean']:.2f} / {g.at[n, 'kendall_tau_mean']:.3f}" for n in show]
        md.append(f"| {target} | {kind} | " + " | ".join(cells) + " |")
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    doc = {
        "benchmark": "hw_predictors",
        "n_archs": len(archs),
        "connected_only": not args.all_archs,
        "trials": args.trials,
        "test_size": args.test_size,
        "sizes": args.sizes,
        "seconds": round(time.perf_counter() - t0, 1),
        "summary": summary.round(4).to_dict(orient="records"),
        "curves": curves.round(5).to_dict(orient="records"),
    }
    args.out.write_text(json.dumps(doc, indent=1))
    print("\n".join(md))


if __name__ == "__main__":
    main()
