"""Search benchmark on NAS-Bench-201: hypervolume fraction of the true front vs validations.

Runs the experiments ``nb201_<problem>_<tactic>`` (problems pixel3 and edgegpu; tactics random,
nsga2, concurrent, and concurrent_alg1: the paper's literal Algorithm 1) for several seeds
through ``search.py``'s ``search(cfg)``, then recomputes everything from each run's archive,
independently of the search code: the true front is the non-dominated set of the bundled table
(rows without a measurement and the degenerate 10% accuracy cells left out),
(100 - accuracy, latency) is normalised to the true front's bounding box, the reference point
is (1.1, 1.1), and the hypervolume (pymoo's HV) of the front found after k validated
evaluations is divided by the true front's.

    python benchmarks/search_nb201.py --seeds 5 --out benchmarks/results/search_nb201.md
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("WANDB_MODE", "offline")

from hydra import compose, initialize_config_dir  # noqa: E402
from pymoo.indicators.hv import HV  # noqa: E402

from search.archive import Archive  # noqa: E402
from search.benchmarks import NB201Table  # noqa: E402
from search.problem import arch_key  # noqa: E402

CHECKPOINTS = (50, 100, 150, 200, 300, 500)
TARGETS = (0.95, 0.98, 0.99)
TAU_UNTIL = 150  # predictor quality on the batches of the first 150 validations
TACTICS = ("random", "nsga2", "concurrent", "concurrent_alg1")
# variants of an experiment: (experiment tactic, extra overrides)
VARIANTS = {
    # the paper's literal Algorithm 1: a long inner NSGA-II over the whole space on the
    # predictors, the batch chosen greedily as if the predictions were true
    "concurrent_alg1": (
        "concurrent",
        [
            "tactic.inner_generations=200",
            "tactic.neighbourhood=0",
            "tactic.believer=true",
            "tactic.anchor=false",
            "tactic.default_predictor=ridge",
            "tactic.target=standard",
        ],
    ),
    # conf/tactic/concurrent_paper.yaml: the paper's form with its population size c = 50 and
    # a 250-generation inner NSGA-II (concurrent_alg1 keeps the default's batches of 25)
    "concurrent_paper": ("concurrent", ["tactic=concurrent_paper"]),
    # ablations of the default ConcurrentNAS
    "concurrent_noanchor": ("concurrent", ["tactic.anchor=false"]),
    "concurrent_svr": ("concurrent", ["tactic.default_predictor=svr"]),
    "concurrent_ridge": ("concurrent", ["tactic.default_predictor=ridge"]),
    # the predictors fit on standardised targets (power transform off)
    "concurrent_standard": ("concurrent", ["tactic.target=standard"]),
    # the previous default: ridge on standardised targets
    "concurrent_ridge_standard": (
        "concurrent",
        ["tactic.default_predictor=ridge", "tactic.target=standard"],
    ),
    # a farther reference point for the selection's hypervolume (default 1.1)
    "concurrent_ref2": ("concurrent", ["tactic.hv_reference=2.0"]),
    # the predictors replaced by the table's truth (not a search method: the ceiling of the
    # candidates and the selection; see OraclePredictor)
    "concurrent_oracle": ("concurrent", []),
    "concurrent_oracle_ref2": ("concurrent", ["tactic.hv_reference=2.0"]),
    # the accuracy predictor replaced by a second training run of each network (the table's
    # cifar10-valid run: same architecture, same recipe, another seed and half the training
    # images; anchored like any prediction): what a predictor as good as retraining would give
    "concurrent_second_run": ("concurrent", []),
    "concurrent_second_run_reach": ("concurrent", ["tactic.reach=acc_top1"]),
    # the selection's box grown toward the accurate end (see search.tactics.reach_box)
    "concurrent_reach": ("concurrent", ["tactic.reach=acc_top1"]),
    "concurrent_oracle_reach": ("concurrent", ["tactic.reach=acc_top1"]),
    # the same neighbourhood batches chosen at random: what the predictors add
    "concurrent_nopred": ("concurrent", ["tactic.default_predictor=none"]),
}
PROBLEMS = ("pixel3", "edgegpu")


def load_search():
    spec = importlib.util.spec_from_file_location("search_script", REPO / "search.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.search


class TrueFront:
    """The issue's definition, computed straight from the table."""

    def __init__(self, table: NB201Table, device: str) -> None:
        frame = table.frame.dropna(subset=[f"latency_ms_{device}", "acc_cifar10_test"])
        acc = frame["acc_cifar10_test"].to_numpy(float)
        keep = acc > acc.min()  # the degenerate cells sit at the table's minimum accuracy
        F = np.c_[100 - acc[keep], frame[f"latency_ms_{device}"].to_numpy(float)[keep]]
        order = np.lexsort((F[:, 1], F[:, 0]))
        front, best = [], np.inf
        for i in order:  # 2-D non-dominated sweep
            if F[i, 1] < best:
                front.append(F[i])
                best = F[i, 1]
        self.front = np.array(front)
        self.lo, self.hi = self.front.min(0), self.front.max(0)
        self.hv = HV(ref_point=np.array([1.1, 1.1]))
        self.total = self.hv(self._norm(self.front))
        self.device = device

    def _norm(self, F: np.ndarray) -> np.ndarray:
        return (F - self.lo) / (self.hi - self.lo)

    def fraction(self, F: np.ndarray) -> float:
        return float(self.hv(self._norm(F))) / self.total if len(F) else 0.0

    def curve(self, evaluations) -> list[float]:
        """HV fraction after each validated evaluation (infeasible ones count, add nothing)."""
        points, out = [], []
        for e in evaluations:
            acc, lat = e.metrics.get("acc_top1"), e.metrics.get(f"latency_ms_{self.device}")
            if acc is not None and lat is not None:
                points.append([100 - acc, lat])
            out.append(self.fraction(np.array(points)) if points else 0.0)
        return out


def archs_of(space, X: np.ndarray) -> list[str]:
    """Architecture keys (the table's strings) of predictor feature rows (the features start
    with the encoding)."""
    n_edges = len(space.decisions)
    return [arch_key(space, space.decode(x[:n_edges])) for x in np.asarray(X)]


class OraclePredictor:
    """Ablation, not a search method: "predicts" the table's true values, so a ConcurrentNAS
    round picks exactly the neighbours that improve the front most. Its HV curve bounds what
    better predictors could give with the same candidates and selection. Unmeasured latencies
    (infeasible rows) come out as 1e9 ms, never selected."""

    def __init__(self, table: NB201Table, space, metric_columns: dict[str, str]) -> None:
        self.table, self.space, self.metric_columns = table, space, metric_columns
        self.name = "predictor:oracle"

    def predict(self, X: np.ndarray, keys) -> np.ndarray:
        archs = archs_of(self.space, X)
        out = []
        for key in keys:
            column = self.metric_columns.get(key, key)  # the evaluator's own mapping
            out.append(np.nan_to_num(self.table.values(archs, column), nan=1e9))
        return np.stack(out, axis=1)


class SecondRunPredictor:
    """Ablation, not a search method: the tactic's own fitted predictors, except that the
    accuracy "prediction" of every network is its accuracy in another training run (``column``
    of the table). Its HV curve shows what an accuracy predictor as good as retraining the
    network would give; the run-to-run noise of training is what it cannot know."""

    def __init__(self, base, table: NB201Table, space, column: str, key: str = "acc_top1"):
        self.base, self.table, self.space, self.column, self.key = base, table, space, column, key
        self.name = f"predictor:{column}"

    def predict(self, X: np.ndarray, keys) -> np.ndarray:
        out = np.array(self.base.predict(X, keys), dtype=float)
        if self.key in keys:
            column = self.table.values(archs_of(self.space, X), self.column)
            out[:, list(keys).index(self.key)] = column
        return out


@contextlib.contextmanager
def patched_predictors(make):
    """ConcurrentNAS.fit_predictors replaced by ``make(tactic, problem, fitted)`` for a run."""
    from search.tactics import ConcurrentNAS

    original = ConcurrentNAS.fit_predictors
    ConcurrentNAS.fit_predictors = lambda self, problem: make(self, problem, original)
    try:
        yield
    finally:
        ConcurrentNAS.fit_predictors = original


def second_run_predictors(table: NB201Table, column: str = "acc_cifar10valid_test"):
    return patched_predictors(
        lambda tactic, problem, fit: SecondRunPredictor(
            fit(tactic, problem), table, problem.space, column
        )
    )


def oracle_predictors(table: NB201Table, metric_columns: dict[str, str]):
    return patched_predictors(
        lambda tactic, problem, fit: OraclePredictor(table, problem.space, metric_columns)
    )


def run_one(
    search,
    table: NB201Table,
    problem: str,
    tactic: str,
    seed: int,
    out_dir: Path,
    budget: int | None = None,
) -> dict:
    base, extra = VARIANTS.get(tactic, (tactic, []))
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "search",
            overrides=[
                f"experiment=nb201_{problem}_{base}",
                *extra,
                f"seed={seed}",
                *([f"budget={budget}"] if budget is not None else []),
                f"paths.output_dir={out_dir}",
                "~logger",
                "progress_bar=false",
            ],
        )
    start = time.time()
    patch = contextlib.nullcontext()
    if "oracle" in tactic:
        patch = oracle_predictors(table, dict(cfg.evaluator.get("metric_columns") or {}))
    elif "second_run" in tactic:
        patch = second_run_predictors(table)
    with patch:
        summary = search(cfg)
    wall = time.time() - start
    archive = Archive(f"sqlite:///{out_dir}/archive.sqlite")
    evaluations = archive.evaluations(study=cfg.study)
    archive.close()
    archs = [e.arch for e in evaluations]
    return {
        "evaluations": evaluations,
        "predictor_history": summary.get("predictor_history", []),
        "n_validated": summary["n_validated"],
        "unique": len(set(archs)),
        "repeats": len(archs) - len(set(archs)),
        "wall_s": wall,
    }


def batch_tau(history: list[dict], key: str = "acc_top1", until: int = TAU_UNTIL) -> float:
    """Mean Kendall tau of the predicted accuracy on each batch the tactic chose (predicted
    before it was validated), over the batches validated within the first ``until``."""
    taus = [
        h[f"{key}/kendall_tau"]
        for h in history
        if h.get("n_validated", np.inf) <= until and f"{key}/kendall_tau" in h
    ]
    taus = [t for t in taus if t == t]
    return float(np.mean(taus)) if taus else float("nan")


def fmt_tau(taus: list[float]) -> str:
    taus = [t for t in taus if t == t]
    return f"{np.mean(taus):.2f}" if taus else "-"


def fmt_reach(values: list[int | None], n_seeds: int) -> str:
    hit = [v for v in values if v is not None]
    if not hit:
        return "not reached"
    mean = f"{np.mean(hit):.0f}"
    return mean if len(hit) == n_seeds else f"{len(hit)} of {n_seeds} seeds, {mean}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    parser.add_argument("--tactics", nargs="+", default=list(TACTICS))
    parser.add_argument("--out", type=Path, default=None, help="markdown file for the table")
    parser.add_argument("--runs-dir", type=Path, default=None, help="keep run dirs here")
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="validations per run (default: the experiment's 500)",
    )
    args = parser.parse_args()

    search = load_search()
    table = NB201Table.bundled()
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="search_nb201_"))
    header = (
        "| problem | tactic | "
        + " | ".join(f"@{c}" for c in CHECKPOINTS)
        + " | evals to 0.95 | evals to 0.98 | evals to 0.99 | unique archs | repeats"
        + f" | acc tau, batches <= {TAU_UNTIL} | s/run |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    raw = {}
    for problem in args.problems:
        truth = TrueFront(table, problem)
        for tactic in args.tactics:
            curves, reach, unique, repeats, walls = [], {t: [] for t in TARGETS}, [], [], []
            taus = []
            for seed in range(args.seeds):
                run = run_one(
                    search,
                    table,
                    problem,
                    tactic,
                    seed,
                    runs_dir / f"{problem}_{tactic}_{seed}",
                    budget=args.budget,
                )
                curve = truth.curve(run["evaluations"])
                curves.append(curve)
                for t in TARGETS:
                    hit = next((i + 1 for i, v in enumerate(curve) if v >= t), None)
                    reach[t].append(hit)
                unique.append(run["unique"])
                repeats.append(run["repeats"])
                walls.append(run["wall_s"])
                taus.append(batch_tau(run["predictor_history"]))
                print(f"{problem} {tactic} seed {seed}: {curve[-1]:.4f} after {len(curve)}",
                      flush=True)  # fmt: skip
            cells = []
            for c in CHECKPOINTS:
                vals = [cv[min(c, len(cv)) - 1] for cv in curves]
                cells.append(f"{np.mean(vals):.3f} ({min(vals):.3f}-{max(vals):.3f})")
            reach_cells = [fmt_reach(reach[t], args.seeds) for t in TARGETS]
            lines.append(
                f"| {problem} | {tactic} | "
                + " | ".join(cells + reach_cells)
                + f" | {np.mean(unique):.0f} | {sum(repeats)} | {fmt_tau(taus)}"
                + f" | {np.mean(walls):.1f} |"
            )
            rounded = [[round(v, 4) for v in c] for c in curves]
            raw[f"{problem}/{tactic}"] = {"curves": rounded, "reach": reach}
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        note = (
            f"HV fraction mean (min-max) over {args.seeds} seeds at k validated evaluations; "
            "evals to a target: mean over the seeds that reach it.\n\n"
        )
        args.out.write_text(note + text + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(raw, default=str))


if __name__ == "__main__":
    main()
