"""AdaProxy on NAS-Bench-201: pixel3 proxy adapted to every other table device with 50 samples.

The proxy predictor is linear in the operator one-hot encoding, fitted by least squares on all
of pixel3's latencies (built a priori, section 5.4.1). For each target device and each of 10
random draws: 50 target architectures (30 to fit eq. 3, 20 to choose lambda, then a refit on
all 50), evaluated on all other architectures measured on the target. Reported per target:
SRCC of the measured pixel3 latency (the device pair's monotonicity), of the proxy predictor,
and of AdaProxy (mean and std over draws), plus a ridge fitted on the same 50 samples from
scratch as a reference, and how many pairs under 0.9 reach 0.9 or more. Pareto transfer
(section 5.5, Fig. 16): the (CIFAR-10 accuracy, latency) Pareto set found with the proxy's or
AdaProxy's latency, after removing the architectures that are not Pareto-optimal among
themselves on the target's measured latency, against the target's own (oracle) Pareto set:
recall = found oracle points / oracle points, precision = found oracle points / kept points.

    python benchmarks/hw_adaproxy.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.adaproxy import AdaProxy, LinearProxy, remove_non_pareto  # noqa: E402
from search.benchmarks import NB201Table  # noqa: E402
from search.pareto import non_dominated_mask  # noqa: E402
from search.predictors import make_predictor  # noqa: E402
from search.ranking import spearman  # noqa: E402
from search.spaces import create_space  # noqa: E402


def pareto_transfer(acc, latency_used, latency_target, oracle) -> tuple[float, float]:
    """Recall and precision of a searched Pareto set after non-Pareto removal on the target."""
    found = np.flatnonzero(non_dominated_mask(np.c_[-acc, latency_used]))
    kept = found[remove_non_pareto(acc[found], latency_target[found])]
    hits = np.isin(kept, oracle).sum()
    return float(hits / len(oracle)), float(hits / len(kept))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--proxy", default="pixel3")
    p.add_argument("--samples", type=int, default=50, help="target measurements per draw")
    p.add_argument("--val-size", type=int, default=20, help="of which held out for lambda")
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--criterion", choices=("mse", "srcc"), default="mse")
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/hw_adaproxy.json"))
    args = p.parse_args()

    table = NB201Table.bundled()
    space = create_space("nb201")
    X = np.stack([space.encode(a) for a in table.frame["arch_str"]])
    num_choices = [len(c) for c in space.decisions.values()]
    y_proxy = table.frame[table.column("latency_ms", args.proxy)].to_numpy(float)
    proxy = LinearProxy(num_choices).fit(X, y_proxy)
    proxy_pred = proxy.predict(X)
    acc = table.frame["acc_cifar10_test"].to_numpy(float)

    rng = np.random.default_rng(args.seed)
    rows = []
    t0 = time.perf_counter()
    for dev in table.devices:
        if dev == args.proxy:
            continue
        y = table.frame[table.column("latency_ms", dev)].to_numpy(float)
        measured = np.flatnonzero(~np.isnan(y))
        a_m, y_m = acc[measured], y[measured]
        oracle = np.flatnonzero(non_dominated_mask(np.c_[-a_m, y_m]))
        proxy_pareto = pareto_transfer(a_m, y_proxy[measured], y_m, oracle)
        ada, scratch, lambdas, before_meas, before_pred = [], [], [], [], []
        ada_pareto, scratch_pareto = [], []
        for _ in range(args.draws):
            s = rng.choice(measured, args.samples, replace=False)
            ev = np.setdiff1d(measured, s)
            model = AdaProxy(proxy, val_size=args.val_size, criterion=args.criterion)
            model.fit(X[s], y[s], rng)
            ada.append(spearman(model.predict(X[ev]), y[ev]))
            lambdas.append(model.lambda_)
            ada_pareto.append(pareto_transfer(a_m, model.predict(X[measured]), y_m, oracle))
            ridge = make_predictor("ridge", num_choices).fit(X[s], y[s])
            scratch.append(spearman(ridge.predict(X[ev]), y[ev]))
            scratch_pareto.append(pareto_transfer(a_m, ridge.predict(X[measured]), y_m, oracle))
            before_meas.append(spearman(y_proxy[ev], y[ev]))
            before_pred.append(spearman(proxy_pred[ev], y[ev]))
        rows.append(
            {
                "target": dev,
                "n_eval": int(len(measured) - args.samples),
                "srcc_proxy_measured": float(np.mean(before_meas)),
                "srcc_proxy_predictor": float(np.mean(before_pred)),
                "srcc_adaproxy": float(np.mean(ada)),
                "srcc_adaproxy_std": float(np.std(ada, ddof=1)),
                "srcc_ridge_from_scratch": float(np.mean(scratch)),
                "lambda_median": float(np.median(lambdas)),
                "pareto_oracle_size": int(len(oracle)),
                "pareto_recall_proxy": proxy_pareto[0],
                "pareto_precision_proxy": proxy_pareto[1],
                "pareto_recall_adaproxy": float(np.mean([r for r, _ in ada_pareto])),
                "pareto_precision_adaproxy": float(np.mean([p for _, p in ada_pareto])),
                "pareto_recall_ridge_from_scratch": float(np.mean([r for r, _ in scratch_pareto])),
            }
        )
    th = args.threshold
    weak = [r for r in rows if r["srcc_proxy_measured"] < th]
    weak_pred = [r for r in rows if r["srcc_proxy_predictor"] < th]
    doc = {
        "benchmark": "hw_adaproxy",
        "proxy": args.proxy,
        "proxy_predictor_self_srcc": spearman(proxy_pred, y_proxy),
        "samples": args.samples,
        "val_size": args.val_size,
        "draws": args.draws,
        "criterion": args.criterion,
        "seconds": round(time.perf_counter() - t0, 1),
        "pairs": len(rows),
        "pairs_under_threshold": len(weak),
        "lifted_to_threshold": sum(r["srcc_adaproxy"] >= th for r in weak),
        "pairs_under_threshold_predictor": len(weak_pred),
        "lifted_to_threshold_predictor": sum(r["srcc_adaproxy"] >= th for r in weak_pred),
        "adaproxy_below_threshold": [r["target"] for r in rows if r["srcc_adaproxy"] < th],
        "mean_srcc_before": float(np.mean([r["srcc_proxy_measured"] for r in rows])),
        "mean_srcc_after": float(np.mean([r["srcc_adaproxy"] for r in rows])),
        "mean_pareto_recall_proxy": float(np.mean([r["pareto_recall_proxy"] for r in rows])),
        "mean_pareto_recall_adaproxy": float(np.mean([r["pareto_recall_adaproxy"] for r in rows])),
        "mean_pareto_recall_ridge_from_scratch": float(
            np.mean([r["pareto_recall_ridge_from_scratch"] for r in rows])
        ),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    md = [
        f"| target | SRCC {args.proxy} (measured) | SRCC proxy predictor | "
        f"SRCC AdaProxy ({args.samples}) | ridge from scratch ({args.samples}) | "
        "Pareto recall proxy / AdaProxy / ridge (oracle size) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        md.append(
            f"| {r['target']} | {r['srcc_proxy_measured']:.3f} | {r['srcc_proxy_predictor']:.3f} | "
            f"{r['srcc_adaproxy']:.3f} ± {r['srcc_adaproxy_std']:.3f} | "
            f"{r['srcc_ridge_from_scratch']:.3f} | {r['pareto_recall_proxy']:.2f} / "
            f"{r['pareto_recall_adaproxy']:.2f} / {r['pareto_recall_ridge_from_scratch']:.2f} "
            f"({r['pareto_oracle_size']}) |"
        )
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    print(json.dumps({k: v for k, v in doc.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
