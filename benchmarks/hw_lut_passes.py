"""Repeatability of recorded LUT-fidelity runs: how well the machine agrees with itself.

For each ``hw_lut_fidelity.py`` output, prints the SRCC between every two measurement passes
over the same networks (no LUT can agree with the measurements better than they agree with
themselves), each pass's mean latency, and the LUT's and the op sum's SRCC against the median
over passes. No timing: it reads the recorded rows.

    python benchmarks/hw_lut_passes.py benchmarks/results/hw_lut_fidelity_t2_n200*.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.measure import pass_agreement  # noqa: E402
from search.ranking import spearman  # noqa: E402


def repeatability(rows: list[dict]) -> dict:
    passes = np.array([r["measured_passes_ms"] for r in rows])  # (networks, passes)
    median = np.median(passes, 1)
    return {
        **pass_agreement(passes),
        "srcc": round(spearman(np.array([r["predicted_ms"] for r in rows]), median), 3),
        "srcc_op_sum_only": round(spearman(np.array([r["op_sum_ms"] for r in rows]), median), 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, nargs="+", help="hw_lut_fidelity.py output JSONs")
    args = p.parse_args()
    for path in args.results:
        if path.stem.endswith(("_lut", "_offline")):
            continue
        doc = json.loads(path.read_text())
        policy = doc["device"].get("omp_wait_policy", "not recorded")
        print(
            json.dumps({"file": path.name, "omp_wait_policy": policy, **repeatability(doc["rows"])})
        )


if __name__ == "__main__":
    main()
