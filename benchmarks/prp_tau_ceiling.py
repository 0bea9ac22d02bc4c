"""How high can a Pareto tau-b go on the ranked architectures? (PRP-NAS goal, NB201 table.)

The ranking experiments (``nb201_fairnas_cifar10``, ``nb201_prp_cifar10``) score 100 fixed
architectures (``arch_seed`` 0) and report Kendall tau-b between the Pareto ranks of
(estimated accuracy, Jetson TX2 latency) and of (NB201 CIFAR-10 test accuracy, the same latency).
The latency is exact on both sides, so every Pareto rank error comes from the accuracy
estimate. This script measures, from the table alone, two references for that metric:

1. **Independent training.** NB201 trained every architecture again on another split
   ("cifar10-valid": 25k training images, mean of 3 seeds, 200 epochs each), and on other
   datasets. Using those accuracies as the "estimate" gives the Pareto tau-b that full,
   separate training reaches against the ground-truth column: a ceiling for any supernet, which
   trains for far less. Reported on the ranked set and over ``--subsets`` random samples of the
   same size (mean, 10th and 90th percentile).
2. **Noise curve.** Gaussian noise of standard deviation ``sd`` (accuracy points) added to the
   true accuracy: the mean accuracy tau-b and Pareto tau-b it leaves, over ``--draws`` draws
   per ``sd``, and the accuracy tau-b at which the Pareto tau-b crosses ``--target``.

Measured runs (``summary.json`` of train.py) passed with ``--runs`` are listed next to them.

    python benchmarks/prp_tau_ceiling.py --runs runs/*/summary.json \
        --out benchmarks/results/prp_tau_ceiling.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np

from search.benchmarks import NB201Table
from search.ranking import ranking_report
from search.spaces import create_space
from search.strict_json import strict_json
from search.subnet_report import evaluation_archs

# accuracy columns of NB201 that come from training runs other than the ground-truth column's
INDEPENDENT = (
    "acc_cifar10valid_valid",
    "acc_cifar10valid_test",
    "acc_cifar100_test",
    "acc_imagenet16_120_test",
)
SDS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--table", default=None, help="table path (default: the bundled table)")
    p.add_argument("--num-archs", type=int, default=100)
    p.add_argument("--arch-seed", type=int, default=0)
    p.add_argument("--gt-metric", default="acc_cifar10_test")
    p.add_argument("--cost-metric", default="latency_ms_edgegpu")
    p.add_argument("--subsets", type=int, default=200, help="random sets for reference 1")
    p.add_argument("--draws", type=int, default=100, help="noise draws per sd")
    p.add_argument("--target", type=float, default=0.9, help="Pareto tau-b goal")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", type=Path, nargs="*", default=[], help="train.py summary.json files")
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def _spread(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, float)
    return {
        "mean": float(v.mean()),
        "p10": float(np.quantile(v, 0.1)),
        "p90": float(np.quantile(v, 0.9)),
    }


def independent_training(
    table: NB201Table, archs, true: np.ndarray, cost: np.ndarray, args, rng: np.random.Generator
) -> dict:
    """Reference 1: another NB201 training run of each architecture as the estimate."""
    on_ranked = {col: ranking_report(table.values(archs, col), true, cost) for col in INDEPENDENT}
    frame = table.frame[table.frame[args.cost_metric].notna()]
    random_sets = {}
    for col in INDEPENDENT:
        reports = []
        for _ in range(args.subsets):
            sub = frame.iloc[rng.choice(len(frame), args.num_archs, replace=False)]
            reports.append(
                ranking_report(
                    sub[col].values, sub[args.gt_metric].values, sub[args.cost_metric].values
                )
            )
        random_sets[col] = {
            k: _spread([r[k] for r in reports]) for k in ("kendall_tau_acc", "kendall_tau_pareto")
        }
    return {"ranked_set": on_ranked, "random_sets": random_sets}


def noise_curve(true: np.ndarray, cost: np.ndarray, args, rng: np.random.Generator) -> dict:
    """Reference 2: (accuracy tau-b, Pareto tau-b) left by Gaussian noise on the true accuracy."""
    curve = []
    for sd in SDS:
        reports = [
            ranking_report(true + rng.normal(0.0, sd, len(true)), true, cost)
            for _ in range(args.draws)
        ]
        curve.append(
            {
                "sd": sd,
                "kendall_tau_acc": float(np.mean([r["kendall_tau_acc"] for r in reports])),
                "kendall_tau_pareto": float(np.mean([r["kendall_tau_pareto"] for r in reports])),
            }
        )
    # the curve falls monotonically with sd: interpolate the crossing of the target
    pareto = np.array([c["kendall_tau_pareto"] for c in curve])
    acc = np.array([c["kendall_tau_acc"] for c in curve])
    needed = None
    if pareto.max() >= args.target >= pareto.min():
        needed = float(np.interp(args.target, pareto[::-1], acc[::-1]))
    return {"curve": curve, "acc_tau_needed_for_target": needed}


def measured_runs(paths: list[Path]) -> list[dict]:
    keys = ("kendall_tau_acc", "kendall_tau_pareto", "n_archs", "n_pareto")
    rows = []
    for path in paths:
        summary = json.loads(path.read_text())
        rows.append({"run": path.parent.name, **{k: summary.get(k) for k in keys}})
    return rows


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    table = NB201Table.load(args.table)
    # exactly the architectures train.py ranks (evaluation.num_archs / evaluation.arch_seed)
    archs = evaluation_archs(create_space("nb201"), args.num_archs, args.arch_seed, ranked=True)
    true = table.values(archs, args.gt_metric)
    cost = table.values(archs, args.cost_metric)
    out = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "table": table.source,
        "n_pareto": int(np.isfinite(cost).sum()),
        "independent_training": independent_training(table, archs, true, cost, args, rng),
        "noise": noise_curve(true, cost, args, rng),
        "runs": measured_runs(args.runs),
        "machine": {"platform": platform.platform(), "load_avg": os.getloadavg()},
    }
    ranked = out["independent_training"]["ranked_set"]
    for col, rep in ranked.items():
        rand = out["independent_training"]["random_sets"][col]["kendall_tau_pareto"]
        print(
            f"{col:>26}: acc tau-b {rep['kendall_tau_acc']:.3f}  Pareto tau-b "
            f"{rep['kendall_tau_pareto']:.3f} (random sets {rand['mean']:.3f} "
            f"[{rand['p10']:.3f}, {rand['p90']:.3f}])"
        )
    for c in out["noise"]["curve"]:
        print(
            f"noise sd {c['sd']:>4}: acc tau-b {c['kendall_tau_acc']:.3f}  "
            f"Pareto tau-b {c['kendall_tau_pareto']:.3f}"
        )
    print(
        f"accuracy tau-b needed for Pareto {args.target}: "
        f"{out['noise']['acc_tau_needed_for_target']}"
    )
    for r in out["runs"]:
        print(f"{r['run']}: acc {r['kendall_tau_acc']:.3f}  Pareto {r['kendall_tau_pareto']:.3f}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(strict_json(out, indent=2))
    return out


if __name__ == "__main__":
    main()
