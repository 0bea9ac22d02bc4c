"""Collect the ranking metrics of finished train.py runs into one table (mean and per seed).

Each run directory holds ``summary.json`` and ``config_resolved.yaml``; runs are grouped by
``task_name`` (the experiment), or by the config keys of ``--group-by``, and listed with their
seed. Metrics no run of a group reports are left out of its row (``-``).

    python benchmarks/collect_ranking.py outputs/nb201_*_cifar10/*
    python benchmarks/collect_ranking.py runs/* --group-by task_name trainer.max_epochs model.prune
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from search.strict_json import strict_json

METRICS = (
    "kendall_tau_acc",
    "spearman_acc",
    "kendall_tau_pareto",
    "mean_subnet_acc",
    "kendall_tau_pareto_score",  # PRP-NAS: the alpha score against the true Pareto ranks
    "epoch_s",  # mean wall time of the epochs the run trained (EpochTimer)
)


def load_run(run_dir: Path, group_by: tuple[str, ...] = ("task_name",)) -> dict:
    """Summary of one run with its group (the ``group_by`` config values) and seed."""
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{run_dir} has no summary.json (unfinished run?)")
    cfg = OmegaConf.load(run_dir / "config_resolved.yaml")
    summary = json.loads(summary_path.read_text())
    epochs = summary.get("epoch_wall_s") or {}
    summary["epoch_s"] = float(np.mean(list(epochs.values()))) if epochs else None
    task = " ".join(
        str(OmegaConf.select(cfg, k)) if k == "task_name" else f"{k}={OmegaConf.select(cfg, k)}"
        for k in group_by
    )
    return {**summary, "task": task, "seed": cfg.seed}


def table(runs: list[dict]) -> tuple[str, dict]:
    """Markdown table (one row per experiment: mean [min, max] over seeds) and the raw figures."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        by_task[run["task"]].append(run)
    lines = [
        "| experiment | seeds | " + " | ".join(METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    figures = {}
    for task, group in sorted(by_task.items()):
        group.sort(key=lambda r: r["seed"])
        cells, figures[task] = [], {"seeds": [r["seed"] for r in group]}
        for m in METRICS:
            vals = np.array([r.get(m) for r in group], dtype=float)  # None -> nan
            figures[task][m] = vals.tolist()
            if np.isnan(vals).all():
                cells.append("-")
            elif m == "epoch_s":
                cells.append(
                    f"{np.nanmean(vals):.0f} [{np.nanmin(vals):.0f}, {np.nanmax(vals):.0f}]"
                )
            else:
                cells.append(f"{vals.mean():.3f} [{vals.min():.3f}, {vals.max():.3f}]")
        lines.append(f"| {task} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines), figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories of train.py")
    parser.add_argument(
        "--group-by", nargs="+", default=["task_name"], help="config keys that name a group"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    parser.add_argument("--note", default="", help="provenance recorded in the JSON (machine...)")
    args = parser.parse_args()
    text, figures = table([load_run(r, tuple(args.group_by)) for r in args.runs])
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            strict_json({"note": args.note, "table": text, "runs": figures}, indent=2)
        )


if __name__ == "__main__":
    main()
