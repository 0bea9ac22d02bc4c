"""How well PRP-NAS's alpha scores rank held-out architectures (PRP-NAS step 2-3, NB201 table).

With the NAS-Bench-201 table as the rank source, alpha training never touches the weights, so
its ranking quality can be measured on its own, through ``PRPModule.alpha_step`` exactly as
training runs it: for each seed and variant, ``epochs`` alpha steps (``alpha_iters`` updates on
fresh samples of ``n_sampled`` each, HVI pruning on the schedule), then the 100 architectures of
the ranking experiments (``arch_seed`` 0, held out of every sample) are scored. Reported:
tau-b of the alpha score against the true Pareto ranks (CIFAR-10 test accuracy, Jetson TX2
latency) and tau-b of the Pareto ranks of (score, latency) against the true ones (the metric
``kendall_tau_pareto`` of train.py, with the score standing for accuracy).

    python benchmarks/prp_alpha_ranking.py --seeds 3 --out benchmarks/results/prp_alpha_ranking.json
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

from lightning_modules.prp import PRPModule
from search.evaluators import TableEvaluator
from search.ranking import pareto_score_report, ranking_report
from search.spaces import create_space

OBJECTIVES = [
    {"metric": "acc_top1", "mode": "max"},
    {"metric": "latency_ms", "mode": "min", "device": "edgegpu"},
]
# variant -> PRPModule keyword overrides
VARIANTS = {
    "paper": {},  # listwise + eq. 2 hinge, HVI pruning
    "no_prune": {"prune": False},
    "listwise_only": {"hinge_weight": 0.0, "prune": False},
    "listwise_only_prune": {"hinge_weight": 0.0},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, nargs="+", default=[5, 50], help="Pareto epochs N_p")
    p.add_argument("--alpha-iters", type=int, nargs="+", default=[1, 40])
    p.add_argument("--n-sampled", type=int, default=50)
    p.add_argument("--top-n", type=int, default=10)
    p.add_argument("--alpha-lr", type=float, default=0.05)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--num-archs", type=int, default=100, help="held-out architectures scored")
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def run_one(args, rank_source, held, variant: str, epochs: int, iters: int, seed: int) -> dict:
    space = create_space("nb201", channels=4, cells_per_stage=1)  # weights are not used
    torch.manual_seed(seed)
    module = PRPModule(
        space.build_supernet(),
        lambda p: torch.optim.SGD(p, lr=0.01),
        rank_source=rank_source,
        objectives=OBJECTIVES,
        alpha_optimizer=lambda p: torch.optim.Adam(p, lr=args.alpha_lr),
        fair_epochs=0,
        n_sampled=args.n_sampled,
        alpha_iters=iters,
        top_n=args.top_n,
        prune_start_epoch=max(1, epochs // 5),
        prune_every=max(1, epochs // 5),
        heldout_archs=held,
        seed=seed,
        **VARIANTS[variant],
    )
    opt = torch.optim.Adam([module.alpha], lr=args.alpha_lr)
    t0 = time.perf_counter()
    for _ in range(epochs):
        module.alpha_step(opt)
    wall = time.perf_counter() - t0
    table = rank_source.table
    acc = table.values(held, "acc_cifar10_test")
    lat = table.values(held, "latency_ms_edgegpu")
    scores = module.scores(held)
    return {
        "variant": variant,
        "epochs": epochs,
        "alpha_iters": iters,
        "seed": seed,
        **pareto_score_report(scores, acc, lat),
        "kendall_tau_pareto": ranking_report(scores, acc, lat)["kendall_tau_pareto"],
        "alive_ops": int(module.alive.sum()),
        "distinct_train_archs": len(module.truth),
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)
    rank_source = TableEvaluator(metric_columns={"acc_top1": "acc_cifar10_test"})
    held = create_space("nb201").sample_unique(np.random.default_rng(0), args.num_archs)
    rows = []
    for variant in args.variants:
        for epochs in args.epochs:
            for iters in args.alpha_iters:
                for seed in range(args.seeds):
                    rows.append(run_one(args, rank_source, held, variant, epochs, iters, seed))
                    print(json.dumps(rows[-1]), flush=True)
    summary = []
    for variant in args.variants:
        for epochs in args.epochs:
            for iters in args.alpha_iters:
                sel = [
                    r
                    for r in rows
                    if (r["variant"], r["epochs"], r["alpha_iters"]) == (variant, epochs, iters)
                ]
                summary.append(
                    {
                        "variant": variant,
                        "epochs": epochs,
                        "alpha_iters": iters,
                        **{
                            k: [
                                float(np.mean([r[k] for r in sel])),
                                min(r[k] for r in sel),
                                max(r[k] for r in sel),
                            ]
                            for k in (
                                "kendall_tau_pareto_score",
                                "kendall_tau_pareto",
                                "kendall_tau_acc_score",
                                "alive_ops",
                            )
                        },
                    }
                )
    out = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "split": (
            f"{args.num_archs} architectures (nb201 sample_unique, rng 0, as train.py's "
            "arch_seed 0) are scored and never sampled; every alpha sample is drawn from the "
            "other architectures with an edgegpu latency"
        ),
        "machine": {"platform": platform.platform(), "load_avg": os.getloadavg()},
        "summary": summary,
        "rows": rows,
    }
    for s in summary:
        print(
            f"{s['variant']:>20} Np={s['epochs']:>3} iters={s['alpha_iters']:>3}  "
            f"tau(score, pareto rank) {s['kendall_tau_pareto_score'][0]:.3f} "
            f"[{s['kendall_tau_pareto_score'][1]:.3f}, {s['kendall_tau_pareto_score'][2]:.3f}]  "
            f"tau pareto(score, lat) {s['kendall_tau_pareto'][0]:.3f}  "
            f"alive {s['alive_ops'][0]:.1f}"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2, default=float))
    return out


if __name__ == "__main__":
    main()
