"""The HADAS job built from a ``search.py`` config (``experiment=hadas_nb201_tx2``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from search.hadas.bilevel import run_hadas

log = logging.getLogger(__name__)


def run_hadas_job(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """``search.py``'s HADAS bi-level search: backbones x exits x DVFS; returns the summary
    (``run_hadas`` writes it to ``out_dir``)."""
    h = cfg.hadas
    pipeline = hydra.utils.instantiate(h.pipeline)
    dvfs = hydra.utils.instantiate(h.hardware.model)
    data = pipeline.datamodule
    data.setup("fit")
    # batch 1: the measured latency of early exit is per sample
    valid = list(DataLoader(data.val_dataloader().dataset, batch_size=1))
    test = list(DataLoader(data.test_dataloader().dataset, batch_size=1))
    OmegaConf.save(cfg, out_dir / "config_resolved.yaml", resolve=True)
    summary = run_hadas(
        pipeline,
        valid,
        dvfs,
        out_dir,
        outer_budget=h.outer_budget,
        max_backbones=h.max_backbones,
        inner_budget=h.inner_budget,
        gamma=h.gamma,
        seed=cfg.seed,
        resume=cfg.resume in (True, "auto"),
        settings=pipeline.settings(),
        test_batches=test,
    )
    log.info("HADAS: %s", json.dumps(summary.get("dynamic_vs_static"), default=float))
    return summary
