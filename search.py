"""Hardware-aware architecture search: the Pareto front within a budget of real evaluations."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from lightning_modules.console import finish_logger, quiet_console, quiet_logger

# The package `search/` shadows this script's name: import from the package, never the script.
from search.objectives import parse_constraints, parse_objectives
from search.plots import plot_front, plot_hypervolume
from search.runner import ProgressBar, SearchCallback, run_search
from search.strict_json import strict_json

log = logging.getLogger("search")
quiet_console()


class LoggerCallback(SearchCallback):
    """Streams every evaluation and the hypervolume to a Lightning logger (W&B or CSV)."""

    def __init__(self, logger) -> None:
        self.logger = logger

    def on_evaluation(self, problem, evaluation, paid) -> None:
        metrics = {f"eval/{k}": v for k, v in evaluation.metrics.items() if v is not None}
        self.logger.log_metrics({**metrics, "search/paid": float(paid)}, step=len(problem.seen))

    def on_step(self, problem, tactic) -> None:
        scores = {f"predictor/{k}": v for k, v in tactic.predictor_scores().items()}
        front = {"search/front_size": len(problem.front()), "search/validated": problem.n_validated}
        self.logger.log_metrics({**front, **scores}, step=len(problem.seen))


def search(cfg: DictConfig) -> dict[str, Any]:
    """Run the configured search, write ``summary.json`` and plots; returns the summary."""
    start = time.time()
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("hadas") is not None:  # HADAS bi-level search: backbones x exits x DVFS
        from search.hadas.setup import run_hadas_job

        return run_hadas_job(cfg, out_dir)
    logger = quiet_logger(hydra.utils.instantiate(cfg.logger)) if cfg.get("logger") else None
    try:
        if cfg.get("dynamic_ofa") is not None:  # a Dynamic-OFA family per processor
            from search.dynamic_ofa.setup import run_family_job

            return run_family_job(cfg, out_dir, logger, start)
        return _pareto_search(cfg, out_dir, logger, start)
    finally:
        finish_logger(logger)


def _pareto_search(cfg: DictConfig, out_dir: Path, logger, start: float) -> dict[str, Any]:
    """The Pareto search of space x objectives x evaluator x tactic, archived and resumable."""
    if cfg.get("threads") is not None:
        import torch

        torch.set_num_threads(cfg.threads)
    log.info("Instantiating space <%s> and evaluator <%s>", cfg.space.name, cfg.evaluator._target_)
    space = hydra.utils.instantiate(cfg.space)
    objectives = parse_objectives(cfg.objectives)
    constraints = parse_constraints(cfg.constraints)
    evaluator = hydra.utils.instantiate(cfg.evaluator, **_devices(cfg, space))
    algorithm = hydra.utils.instantiate(cfg.algorithm)
    log.info("Instantiating tactic <%s> with <%s>", cfg.tactic._target_, cfg.algorithm._target_)
    tactic = hydra.utils.instantiate(cfg.tactic, algorithm=algorithm)
    archive = hydra.utils.instantiate(cfg.archive)
    OmegaConf.save(cfg, out_dir / "config_resolved.yaml", resolve=True)
    callbacks: list[SearchCallback] = [ProgressBar(disable=not cfg.progress_bar)]
    if logger is not None:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        callbacks.append(LoggerCallback(logger))
    try:
        result = run_search(
            space,
            objectives,
            evaluator,
            tactic=tactic,
            budget=cfg.budget,
            archive=archive,
            study=cfg.study,
            seed=cfg.seed,
            resume=cfg.resume,
            constraints=constraints,
            callbacks=callbacks,
        )
        summary = result.summary()
        summary.update(
            study=cfg.study,
            archive_url=archive.url,
            evaluator=evaluator.name,
            config_path=str(out_dir / "config_resolved.yaml"),
            wall_time_s=time.time() - start,
        )
        (out_dir / "summary.json").write_text(strict_json(summary, indent=2))
        plots = {
            "front": plot_front(result, out_dir / "front.png"),
            "hypervolume": plot_hypervolume(result, out_dir / "hypervolume.png"),
        }
        if logger is not None:
            _log_results(logger, result, summary, plots)
        log.info(
            "front of %d after %d validated (%d unique), hypervolume %.4f -> %s",
            len(result.front),
            summary["n_validated"],
            summary["n_unique"],
            summary["hypervolume"],
            out_dir / "summary.json",
        )
        return summary
    finally:
        archive.close()


def _devices(cfg: DictConfig, space) -> dict[str, Any]:
    """``hardware=<device>`` plugs a device in as the source of its metrics (objectives name it
    by ``device.name``, e.g. ``objectives.latency.device=cpu``)."""
    if cfg.get("hardware") is None:
        return {}
    device = hydra.utils.instantiate(cfg.hardware, space=space)
    if "devices" not in cfg.evaluator:
        raise ValueError(
            f"hardware={device.name} needs an evaluator that takes devices (evaluator=nb201_table)"
        )
    log.info("Device <%s> measures metrics on device %r", cfg.hardware._target_, device.name)
    return {"devices": {device.name: device}}


def _log_results(logger, result, summary: dict, plots: dict[str, Path]) -> None:
    scalars = {
        k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    logger.log_metrics({f"search/{k}": v for k, v in scalars.items()})
    if type(logger).__name__ != "WandbLogger":
        return  # CSV: the plots and the archive are in the run directory
    for name, path in plots.items():
        logger.log_image(f"search/{name}", images=[str(path)])
    keys = sorted({k for e in result.evaluations for k in e.metrics})
    rows = [
        [i, e.arch, paid, e.evaluator, *[e.metrics.get(k) for k in keys]]
        for i, (e, paid) in enumerate(zip(result.evaluations, result.paid, strict=True))
    ]
    logger.log_table(
        "search/evaluations", columns=["order", "arch", "validated", "evaluator", *keys], data=rows
    )


@hydra.main(version_base="1.3", config_path="conf", config_name="search")
def main(cfg: DictConfig) -> float:
    summary = search(cfg)
    if "hypervolume" not in summary:  # HADAS: the dynamic front's hypervolume
        return summary["dynamic_vs_static"]["hv_a"]
    return summary["hypervolume"]


if __name__ == "__main__":
    main()
