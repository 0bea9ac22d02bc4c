"""Measured wall-time estimate of a progressive-shrinking experiment, without running it.

Runs ``--steps`` training steps of every phase of the experiment (its data, space, batch size,
n_subnets and choices; each phase shortened to one epoch of ``--steps`` batches through the real
module and Lightning loop), times each step, and extrapolates:

    train_s = sum over phases p of  epochs_p * steps_per_epoch * mean_step_s(p)
    val_s   = epochs * val_batches * n_probes * mean_val_batch_s
    eval_s  = (2 + num_archs) * (recal_batches + n_val_batches) * mean_eval_batch_s
    total_s = data_load_s + train_s + val_s + eval_s

(the first ``--warmup`` steps of each phase are not timed; validation and evaluation batches are
timed on the max architecture in eval mode, an upper bound). Writes a JSON record:

    python benchmarks/ofa_train_time.py experiment=ofa_mbv3_cifar10 \
        --out benchmarks/results/ofa_train_cifar10_estimate.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lightning_modules.console import quiet_console

CONF = Path(__file__).resolve().parents[1] / "conf"


class StepTimer(pl.Callback):
    """Wall time of every training batch, by epoch (= phase here)."""

    def __init__(self) -> None:
        self.times: dict[int, list[float]] = {}
        self._t = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._t = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.times.setdefault(trainer.current_epoch, []).append(time.perf_counter() - self._t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=...")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per phase")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps per phase")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    quiet_console()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[*args.overrides, "paths.output_dir=/tmp/ofa_time"])
    OmegaConf.resolve(cfg)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    pl.seed_everything(cfg.seed)

    t0 = time.perf_counter()
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    data_load_s = time.perf_counter() - t0
    space = hydra.utils.instantiate(cfg.space, num_classes=datamodule.num_classes)
    phases = [dict(p) for p in cfg.model.phases]
    # every phase once, one epoch of (warmup + steps) batches
    short = [{**p, "epochs": 1} for p in phases]
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model_cfg["phases"] = short
    module = hydra.utils.instantiate(model_cfg, supernet=space.build_supernet())
    timer = StepTimer()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=len(short),
        limit_train_batches=args.warmup + args.steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, datamodule=datamodule)

    steps_per_epoch = len(datamodule.train_dataloader())
    per_phase = []
    train_s = 0.0
    for i, p in enumerate(phases):
        times = timer.times[i][args.warmup :]
        mean = statistics.fmean(times)
        per_phase.append({**p, "mean_step_s": mean, "median_step_s": statistics.median(times)})
        train_s += p["epochs"] * steps_per_epoch * mean

    # validation / evaluation batches: the max architecture in eval mode (upper bound)
    net = module.net.eval()
    net.set_active(space.max_arch())
    ev = cfg.evaluation
    val_loader = datamodule.val_dataloader()
    n_val_batches = len(val_loader)
    x, _ = next(iter(val_loader))
    x = x.contiguous(memory_format=module.memory_format)
    with torch.no_grad():
        net(x)
        t = time.perf_counter()
        for _ in range(3):
            net(x)
    val_batch_s = (time.perf_counter() - t) / 3
    epochs = sum(p["epochs"] for p in phases)
    limit_val = cfg.trainer.get("limit_val_batches", 1.0)
    val_batches = n_val_batches if isinstance(limit_val, float) else min(limit_val, n_val_batches)
    val_s = epochs * val_batches * ev.num_probe_archs * val_batch_s
    eval_val_batches = n_val_batches if ev.val_batches is None else ev.val_batches
    # recalibration batches are training-size batches in train mode: scale by batch size
    recal_batch_s = val_batch_s * cfg.data.batch_size / cfg.data.eval_batch_size
    eval_s = (2 + ev.num_archs) * (
        ev.recal_batches * recal_batch_s + eval_val_batches * val_batch_s
    )
    total_s = data_load_s + train_s + val_s + eval_s
    record = {
        "overrides": args.overrides,
        "formula": "total_s = data_load_s + sum_p epochs_p * steps_per_epoch * mean_step_s(p) "
        "+ val_s + eval_s",
        "steps_timed_per_phase": args.steps,
        "warmup_steps": args.warmup,
        "steps_per_epoch": steps_per_epoch,
        "batch_size": cfg.data.batch_size,
        "threads": cfg.threads,
        "data_source": datamodule.source,
        "data_sizes": datamodule.split_sizes(),
        "data_load_s": data_load_s,
        "phases": per_phase,
        "train_s": train_s,
        "val_batch_s_max_arch": val_batch_s,
        "val_s": val_s,
        "eval_s": eval_s,
        "total_s": total_s,
        "total_h": total_s / 3600,
        "load_avg_1m_at_end": os.getloadavg()[0],
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
