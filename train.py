"""Train a weight-sharing supernet, then evaluate sub-networks from its shared weights.

The evaluation follows the space (``conf/evaluation/<space>.yaml``): with a ground-truth table
(NAS-Bench-201, whose evaluation names a ``gt_metric``) the sampled sub-networks are ranked
against it (Kendall tau, PRP-NAS section 3.1); a space with no ground truth (``ofa_mbv3``)
reports the accuracy of its max, min and sampled sub-networks instead.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from lightning_modules.console import finish_logger, quiet_console, quiet_logger
from lightning_modules.ofa.phases import parse_phases
from lightning_modules.timing import EpochTimer
from search.strict_json import strict_json
from search.subnet_report import (
    accuracy_spread,
    evaluation_archs,
    rank_against_table,
    score_archs,
)

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
    space_name = cfg.space.get("name")
    if "gt_metric" in cfg.evaluation and space_name != "nb201":
        raise ValueError(
            f"evaluation ranks sub-networks against the NAS-Bench-201 table (evaluation.gt_metric="
            f"{cfg.evaluation.gt_metric}), which has no space={space_name} architectures: use "
            "evaluation=ofa_mbv3 (shared-weight accuracy of the max, min and sampled sub-networks)"
        )
    if "phases" in cfg.model:
        total = sum(p.epochs for p in parse_phases(cfg.model.phases))
        if cfg.trainer.get("max_epochs") != total:
            raise ValueError(
                f"trainer.max_epochs={cfg.trainer.get('max_epochs')!r} but model.phases last "
                f"{total} epochs: set trainer.max_epochs={total} or change the phases' epochs"
            )


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the supernet, rank or score sub-networks, write ``summary.json``; returns it."""
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
    ranked = "gt_metric" in ev  # a ground-truth table to rank against (NAS-Bench-201)
    archs = evaluation_archs(space, ev.num_archs, ev.arch_seed, ranked)
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
        timers = [c for c in callbacks if isinstance(c, EpochTimer)]
        summary: dict[str, Any] = {
            "val_acc": _metric(trainer, "val/acc"),
            "train_loss": _metric(trainer, "train/loss"),
            "sampler": cfg.model.sampler,
            "data_source": datamodule.source,
            "data_sizes": datamodule.split_sizes(),
            # epoch -> wall seconds of the epochs this run trained (a resumed run: its own)
            "epoch_wall_s": timers[0].times if timers else None,
        }
        if archs:
            results = score_archs(
                module.net,
                datamodule,
                archs,
                ev.recal_batches,
                ev.val_batches,
                cfg.seed,
                out_dir / "subnet_eval.jsonl",
                trainer.strategy.root_device,
            )
        if ranked and archs:
            ranks = rank_against_table(
                space, module, archs, results, ev.table_path, ev.gt_metric, ev.cost_metric
            )
            summary.update(ranks["metrics"], gt_table=ranks["table_source"], **ranks["extras"])
            logger.log_metrics({f"rank/{k}": v for k, v in ranks["metrics"].items()})
            _log_table(logger, ranks["rows"], [ev.gt_metric, ev.cost_metric])
        elif not ranked:
            scores = accuracy_spread(space.name, archs, results)
            summary.update(scores["metrics"], acc_top1_sampled=scores["acc_top1_sampled"])
            # what rebuilds the supernet from the checkpoint: create_space(**summary["space"])
            summary["space"] = {"name": space.name, **getattr(space, "kwargs", {})}
            floats = {k: v for k, v in scores["metrics"].items() if isinstance(v, float)}
            logger.log_metrics({f"eval/{k}": v for k, v in floats.items()})
            _log_table(logger, scores["rows"], [])
        ckpt_cb = trainer.checkpoint_callback
        summary.update(
            n_evaluated_archs=ev.num_archs,
            config_path=str(out_dir / "config_resolved.yaml"),
            # A run resumed after its last epoch trains nothing: its weights are ckpt_path's.
            checkpoint_path=(ckpt_cb.last_model_path if ckpt_cb else None) or cfg.ckpt_path,
            wall_time_s=time.time() - start,
        )
        (out_dir / "summary.json").write_text(strict_json(summary, indent=2))
        log.info("summary: %s", strict_json(summary))
        return summary
    finally:
        finish_logger(logger)


def _metric(trainer: pl.Trainer, key: str) -> float | None:
    value = trainer.callback_metrics.get(key)
    return None if value is None else float(value)


def _log_table(logger, rows: list[list], names: list[str]) -> None:
    if type(logger).__name__ == "WandbLogger":
        logger.log_table("rank/subnets", columns=["arch", "est_acc", *names], data=rows)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    summary = train(cfg)
    # the sweeper's metric: ranking quality, or with no ground truth the mean sub-network accuracy
    return summary.get("kendall_tau_pareto", summary.get("mean_subnet_acc"))


if __name__ == "__main__":
    main()
