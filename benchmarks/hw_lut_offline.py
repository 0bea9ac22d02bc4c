"""LUT fidelity re-evaluated offline from a recorded run: calibration rules, drift, noise ceiling.

Reads the rows (arch, measured_ms, op_sum_ms) of a ``hw_lut_fidelity.py`` output and its LUT
file, traces every architecture (no timing) to count its op calls, and compares, on the same
measurements:

- ``fixed``: op sum + median(measured - op sum) over k calibration archs (the old rule);
- ``per_call``: op sum + n_calls * per_call_ms + fixed_ms (``LatencyLUT.calibrate``) on k
  archs spread over op-call counts (``spanning_subset``), and on k random archs (mean over
  draws); SRCC always on the archs not used for calibration;
- the ceiling any additive model has on these measurements: SRCC of a least-squares fit with
  one coefficient per (edge, op), fitted and scored on all rows (in-sample, optimistic);
- slow drift of the machine during the run: lag-1 autocorrelation, in measurement order, of
  the relative residual of that fit (0 for independent noise), and, as a diagnostic only, the
  SRCC after dividing each measurement by the median measured / op-sum ratio of its 20
  neighbours in measurement order (what the rows would give without the drift).

    python benchmarks/hw_lut_offline.py benchmarks/results/device/hw_lut_fidelity_cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.lut import LatencyLUT, spanning_subset, trace_ops  # noqa: E402
from search.ranking import spearman  # noqa: E402
from search.spaces import create_space  # noqa: E402
from search.spaces.nb201 import OPS, parse_arch  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("result", type=Path, help="hw_lut_fidelity.py output JSON")
    p.add_argument("--lut", type=Path, default=None, help="its LUT (default: <result>_lut.json)")
    p.add_argument("--k", type=int, nargs="+", default=[5, 10, 20], help="calibration archs")
    p.add_argument("--draws", type=int, default=200, help="random calibration draws per k")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="default: <result>_offline.json")
    args = p.parse_args()
    torch.set_num_threads(1)

    doc = json.loads(args.result.read_text())
    lut = LatencyLUT.load(args.lut or args.result.with_name(f"{args.result.stem}_lut.json"))
    sp = doc["space"]
    space = create_space("nb201", channels=sp["channels"], cells_per_stage=sp["cells_per_stage"])
    rows = doc["rows"]
    measured = np.array([r["measured_ms"] for r in rows])
    dev = doc["device"]
    x = torch.zeros(dev["batch_size"], dev["in_channels"], dev["resolution"], dev["resolution"])
    sigs = [
        trace_ops(space.build_subnet(r["arch"]).eval(), x, lut.functional).signatures for r in rows
    ]
    # The recorded op sums: the run's own LUT lookups (a newer torch may spell a module's
    # settings differently, e.g. BatchNorm2d's ``bias=True``; the call count is unaffected).
    op_sum = np.array([r["op_sum_ms"] for r in rows])
    calls = np.array([len(s) for s in sigs])
    n = len(rows)

    def scores(idx: np.ndarray) -> dict[str, float]:
        rest = np.setdiff1d(np.arange(n), idx)
        fixed = float(np.median(measured[idx] - op_sum[idx]))
        fit = LatencyLUT(lut.ops, stat=lut.stat)
        fit.calibrate(measured[idx], op_sum[idx], calls[idx])
        pred = op_sum + calls * fit.per_call_ms + fit.fixed_ms
        return {
            "fixed": spearman(op_sum[rest] + fixed, measured[rest]),
            "per_call": spearman(pred[rest], measured[rest]),
            "per_call_ms": fit.per_call_ms,
            "fixed_ms": fit.fixed_ms,
        }

    rng = np.random.default_rng(args.seed)
    calib = {}
    for k in args.k:
        spread = scores(np.array(spanning_subset(calls, op_sum, k)))
        draws = [scores(rng.choice(n, k, replace=False)) for _ in range(args.draws)]
        calib[k] = {
            "spanning": spread,
            "random_mean": {key: float(np.mean([d[key] for d in draws])) for key in spread},
        }

    onehot = np.array([[op == o for op in parse_arch(r["arch"]) for o in OPS[1:]] for r in rows])
    design = np.column_stack([onehot.astype(float), np.ones(n)])
    coef, *_ = np.linalg.lstsq(design, measured, rcond=None)
    additive = design @ coef
    rel = measured / additive - 1
    ratio = measured / op_sum
    drift = np.array(
        [np.median(np.r_[ratio[max(0, i - 10) : i], ratio[i + 1 : i + 11]]) for i in range(n)]
    )
    out = {
        "result": str(args.result),
        "n_archs": n,
        "recorded_srcc": doc.get("srcc"),
        "srcc_op_sum_only": spearman(op_sum, measured),
        "n_calls_range": [int(calls.min()), int(calls.max())],
        "calibration": calib,
        "additive_ceiling_srcc_in_sample": spearman(additive, measured),
        "residual_rel_std": float(rel.std()),
        "residual_lag1_autocorr": float(np.corrcoef(rel[:-1], rel[1:])[0, 1]),
        "srcc_op_sum_drift_corrected_diagnostic": spearman(op_sum, measured / drift),
        "residual_mean_by_block_of_20": [
            round(float(rel[i : i + 20].mean()), 3) for i in range(0, n, 20)
        ],
    }
    dest = args.out or args.result.with_name(f"{args.result.stem}_offline.json")
    dest.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
