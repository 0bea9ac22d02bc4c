"""Train a weight-sharing supernet, then rank sub-networks against NAS-Bench-201 ground truth."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from lightning_modules.console import quiet_console, quiet_logger
from search.benchmarks import NB201Table
from search.evaluators.subnet import SubnetEvaluator
from search.ranking import ranking_report

log = logging.getLogger("train")

quiet_console()


def check_config(cfg: DictConfig) -> None:
    """Reject values that would fail deep inside Lightning with an unrelated error.

    Raises:
        ValueError: naming the key and its valid values.
    """
    epochs, steps = cfg.trainer.get("max_epochs"), cfg.trainer.get("max_steps", -1)
    if not (isinstance(epochs, int) and epochs >= 1) and not (
        epochs in (None, -1) and isinstance(steps, int) and steps >= 1
    ):
        raise ValueError(
            f"trainer.max_epochs={epochs!r}: must be an integer >= 1 (or null / -1 together with "
            "trainer.max_steps >= 1); the cosine LR schedule needs a finite number of steps"
        )
    if cfg.threads is not None and not (isinstance(cfg.threads, int) and cfg.threads >= 1):
        raise ValueError(f"threads={cfg.threads!r}: must be an integer >= 1 or null")
    if cfg.evaluation.num_archs < 0:
        raise ValueError(f"evaluation.num_archs={cfg.evaluation.num_archs}: must be >= 0")
    if "network" in cfg.model.keys():  # noqa: SIM118 (DictConfig `in` is False for ???)
        raise ValueError(
            f"model={cfg.model._target_.rsplit('.', 1)[-1]} trains exits on a frozen backbone, "
            "not a supernet: train.py trains supernets (model=fairnas, spos, prp); exits are "
            "trained by lightning_modules.multi_exit.ExitPipeline (benchmarks/hadas_*.py)"
        )


def rank_subnets(
    cfg: DictConfig,
    module,
    datamodule,
    space,
    archs: list[str],
    out_dir: Path,
    device: torch.device,
) -> dict:
    """Score ``archs`` from the shared weights and correlate with the benchmark's ground truth."""
    ev = cfg.evaluation
    evaluator = SubnetEvaluator.from_datamodule(
        datamodule,
        ev.recal_batches,
        ev.val_batches,
        seed=cfg.seed,
        results_path=out_dir / "subnet_eval.jsonl",
        device=device,
    )
    module.net.eval()
    results = evaluator.evaluate(module.net, archs)
    table = NB201Table.load(ev.table_path)
    est = np.array([r["acc_top1"] for r in results])
    true = table.values(archs, ev.gt_metric)
    cost = table.values(archs, ev.cost_metric) if ev.cost_metric else None
    report = ranking_report(est, true, cost)
    report["mean_subnet_acc"] = float(est.mean())
    extras = {}
    if hasattr(module, "ranking_summary"):  # e.g. PRP-NAS: alpha scores, selection, pruning
        extras = module.ranking_summary([space.parse(a) for a in archs], true, cost)
        report.update({k: v for k, v in extras.items() if isinstance(v, float)})
        extras = {k: v for k, v in extras.items() if not isinstance(v, float)}
    rows = [[a, r["acc_top1"], t, c] for a, r, t, c in zip(archs, results, true, cost, strict=True)]
    return {"metrics": report, "rows": rows, "table_source": table.source, "extras": extras}


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the supernet, rank sub-networks, write ``summary.json``; returns the summary."""
    start = time.time()
    check_config(cfg)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)

    log.info("Instantiating datamodule <%s>", cfg.data._target_)
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    space = hydra.utils.instantiate(cfg.space, num_classes=datamodule.num_classes)
    ev = cfg.evaluation
    # arch strings: the records and the ranking against the table keep the benchmark form
    archs = [
        space.serialize(a)
        for a in space.sample_unique(np.random.default_rng(ev.arch_seed), ev.num_archs)
    ]
    log.info("Instantiating model <%s> (sampler=%s)", cfg.model._target_, cfg.model.sampler)
    # a model that learns from ground-truth ranks (PRP-NAS) never sees the ranked architectures
    heldout = {}
    if "heldout_archs" in cfg.model:
        heldout["heldout_archs"] = [space.parse(a) for a in archs]
    module = hydra.utils.instantiate(
        cfg.model,
        supernet=space.build_supernet(),
        probe_archs=archs[: ev.num_probe_archs],
        **heldout,
    )
    logger = quiet_logger(hydra.utils.instantiate(cfg.logger))
    callbacks = [hydra.utils.instantiate(c) for c in cfg.callbacks.values()]
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, logger=logger, callbacks=callbacks)
    logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    OmegaConf.save(cfg, out_dir / "config_resolved.yaml", resolve=True)

    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        if not trainer.is_global_zero:
            return {}
        summary: dict[str, Any] = {
            "val_acc": _metric(trainer, "val/acc"),
            "train_loss": _metric(trainer, "train/loss"),
            "sampler": cfg.model.sampler,
            "data_source": datamodule.source,
            "data_sizes": datamodule.split_sizes(),
        }
        if ev.num_archs > 0:
            ranked = rank_subnets(
                cfg, module, datamodule, space, archs, out_dir, trainer.strategy.root_device
            )
            summary.update(ranked["metrics"], gt_table=ranked["table_source"], **ranked["extras"])
            logger.log_metrics({f"rank/{k}": v for k, v in ranked["metrics"].items()})
            _log_table(logger, ranked["rows"], [ev.gt_metric, ev.cost_metric])
        ckpt_cb = trainer.checkpoint_callback
        summary.update(
            n_evaluated_archs=ev.num_archs,
            config_path=str(out_dir / "config_resolved.yaml"),
            # A run resumed after its last epoch trains nothing: its weights are ckpt_path's.
            checkpoint_path=(ckpt_cb.last_model_path if ckpt_cb else None) or cfg.ckpt_path,
            wall_time_s=time.time() - start,
        )
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
        log.info("summary: %s", json.dumps(summary, default=float))
        return summary
    finally:
        if hasattr(logger, "experiment") and type(logger).__name__ == "WandbLogger":
            import wandb

            wandb.finish()


def _metric(trainer: pl.Trainer, key: str) -> float | None:
    value = trainer.callback_metrics.get(key)
    return None if value is None else float(value)


def _log_table(logger, rows: list[list], names: list[str]) -> None:
    if type(logger).__name__ == "WandbLogger":
        logger.log_table("rank/subnets", columns=["arch", "est_acc", *names], data=rows)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    summary = train(cfg)
    return summary.get("kendall_tau_pareto")


if __name__ == "__main__":
    main()
