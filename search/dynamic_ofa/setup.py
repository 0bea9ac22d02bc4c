"""The family search built from a ``search.py`` config (``experiment=ofa_mbv3_family``)."""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from search.dynamic_ofa.family import FamilySearch, Processor
from search.dynamic_ofa.report import log_family, plot_family, processor_summary
from search.evaluators.supernet import SupernetEvaluator
from search.strict_json import strict_json

log = logging.getLogger(__name__)


def build_family_search(
    cfg: DictConfig, out_dir: str | Path
) -> tuple[FamilySearch, dict[str, str]]:
    """The :class:`FamilySearch` of a config, and the processors skipped (name -> why).

    A processor with ``requires_cuda: true`` is skipped where torch sees no CUDA device; the
    summary names it. The archive is the config's (``archive.url``), so a rerun in the same run
    directory resumes.
    """
    d = cfg.dynamic_ofa
    space = hydra.utils.instantiate(cfg.space)
    datamodule = hydra.utils.instantiate(cfg.evaluator.datamodule)
    e = cfg.evaluator  # the accuracy keys of evaluator=supernet; latency is per processor
    accuracy = SupernetEvaluator(
        e.ckpt_path,
        space,
        datamodule,
        recal_batches=e.recal_batches,
        val_batches=e.val_batches,
        seed=e.seed,
        device=e.device,
    )
    processors, skipped = [], {}
    make = functools.partial(hydra.utils.instantiate, space=space)
    for name, p in d.processors.items():
        if p.get("requires_cuda") and not torch.cuda.is_available():
            skipped[name] = "torch sees no CUDA device on this machine"
            continue
        remeasure = make(p.remeasure) if p.get("remeasure") is not None else None
        processors.append(Processor(name, make(p.predict), remeasure))
    log.info("Dynamic-OFA family for %s (skipped: %s)", [p.name for p in processors], skipped)
    if hasattr(space, "kwargs"):  # what rebuilds it: create_space(name, **kwargs)
        space_spec = {"name": space.name, **space.kwargs}
    else:
        spec = OmegaConf.to_container(cfg.space, resolve=True)
        space_spec = {k: v for k, v in spec.items() if k != "_target_"}
    family = FamilySearch(
        space,
        accuracy,
        datamodule,
        processors,
        hydra.utils.instantiate(cfg.archive),
        out_dir,
        space_spec,
        checkpoint=cfg.evaluator.ckpt_path,
        alg1=d.alg1,
        refine=d.refine,
        selection=d.selection,
        bn_images=d.bn_images,
        final_val_images=d.final_val_images,
        artifact_dir=d.artifact_dir,
        seed=cfg.seed,
        resume=cfg.resume,
    )
    return family, skipped


def data_summary(family: FamilySearch) -> dict[str, Any]:
    """Which images the figures come from."""
    subnets = family.acc_eval.subnets
    return {
        "source": family.data_source,
        "search_val_images": sum(len(y) for _, y in subnets.val_batches),
        "search_recal_images": sum(len(x) for x in subnets.recal_batches),
        "final_val_images": family.n_final_val,
        "bn_images": family.bn_images,
    }


def run_family_job(cfg: DictConfig, out_dir: Path, logger: Any, start: float) -> dict[str, Any]:
    """``search.py``'s Dynamic-OFA job (``experiment=ofa_mbv3_family``): Alg. 1 parents, NSGA-II
    refinement, levels re-measured, the artifact in ``<run dir>/family``; writes
    ``summary.json`` and the family plot, logs to ``logger`` (or None), returns the summary."""
    torch.set_num_threads(cfg.threads)
    family, skipped = build_family_search(cfg, out_dir)
    OmegaConf.save(cfg, out_dir / "config_resolved.yaml", resolve=True)
    try:
        results = family.run()
        per = {name: processor_summary(r) for name, r in results.items()}
        summary = {
            "artifact": str(family.artifact),
            "processors": per,
            "skipped_processors": skipped,
            "hypervolume": sum(p["hypervolume_family"] for p in per.values()) / len(per),
            "data": data_summary(family),
            "computed": {"accuracy": family.acc.computed, "final": family.final.computed},
            "checkpoint": cfg.evaluator.ckpt_path,
            "wall_time_s": time.time() - start,
        }
        (out_dir / "summary.json").write_text(strict_json(summary, indent=2))
        plot = plot_family(results, out_dir / "family_front.png")
        if logger is not None:
            log_family(logger, per, plot)
        log.info("Dynamic-OFA family -> %s (%.0f s)", family.artifact, summary["wall_time_s"])
        return summary
    finally:
        family.archive.close()
