"""train.py end to end: configs compose, summary.json, resume equals uninterrupted, DDP on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from train import train

CONF = Path(__file__).resolve().parents[1] / "conf"
TINY = [
    "data=synthetic",
    "space.channels=4",
    "space.cells_per_stage=1",
    "logger=csv",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "evaluation.num_archs=8",
    "evaluation.recal_batches=2",
]


def _cfg(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=[*TINY, f"paths.output_dir={tmp_path}", *overrides])


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _words(path: Path) -> list[str]:
    """The markers that make an experiment search.py's: a tactic override, a hadas or a
    dynamic_ofa node."""
    text = path.read_text()
    return [m for m in ("/tactic", "hadas:", "dynamic_ofa:") if m in text]


def _train_experiments() -> list[str]:
    """Experiments of train.py (search.py's own set a tactic; tests/test_search.py has those)."""
    return [
        o
        for o in _options("experiment")
        if not {"/tactic", "hadas:", "dynamic_ofa:"}
        & set(_words(CONF / "experiment" / f"{o}.yaml"))
    ]


@pytest.mark.parametrize(
    "override",
    [
        f"{g}={o}"
        for g in ("data", "space", "model", "trainer", "logger")
        for o in _options(g)
        # HADAS exit training (a frozen backbone, not a supernet): train.py does not drive it yet;
        # tests/lightning_modules/test_multi_exit.py composes and instantiates it
        if (g, o) != ("model", "multi_exit")
    ]
    + [f"experiment={o}" for o in _train_experiments()],
)
def test_every_config_composes_and_instantiates(tmp_path, override):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.output_dir={tmp_path}", override])
    OmegaConf.resolve(cfg)
    space = hydra.utils.instantiate(cfg.space, num_classes=10)
    module = hydra.utils.instantiate(cfg.model, supernet=space.build_supernet())
    assert module.hparams.sampler in ("fairnas", "spos")
    assert hydra.utils.instantiate(cfg.data).hparams is not None
    assert cfg.logger._target_.startswith("pytorch_lightning.loggers")
    if cfg.trainer.accelerator == "cpu":
        hydra.utils.instantiate(cfg.trainer, logger=False)
    if override.startswith("logger=wandb"):
        assert cfg.logger.offline is True  # never prompts for an account or blocks on network


def test_train_writes_a_complete_summary(tmp_path):
    summary = train(_cfg(tmp_path))
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary, default=float))
    for key in ("val_acc", "kendall_tau_acc", "kendall_tau_pareto", "spearman_acc"):
        assert -100 <= summary[key] <= 100
    assert summary["n_evaluated_archs"] == 8 and summary["n_archs"] == 8
    assert Path(summary["checkpoint_path"]).is_file()
    assert Path(summary["config_path"]).is_file()
    assert len((tmp_path / "subnet_eval.jsonl").read_text().splitlines()) == 8
    # every epoch timed, in the log file and the summary, and within the run's wall time
    timed = [json.loads(line) for line in (tmp_path / "epoch_times.jsonl").read_text().splitlines()]
    assert [t["epoch"] for t in timed] == [0, 1]
    assert {str(t["epoch"]): t["wall_s"] for t in timed} == on_disk["epoch_wall_s"]
    assert 0 < sum(t["wall_s"] for t in timed) < summary["wall_time_s"]


class CrashAtEpoch(pl.Callback):
    """Kills a run when ``epoch`` starts (after the previous epoch's checkpoint was written)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated crash")


def resumable_trainer(tmp_path, max_epochs: int, callbacks=()) -> pl.Trainer:
    """A quiet CPU trainer writing ``last.ckpt`` under ``tmp_path / "ckpt"`` every epoch, for
    the modules' crash -> resume tests (with :class:`CrashAtEpoch`)."""
    return pl.Trainer(
        max_epochs=max_epochs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        callbacks=[
            pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True),
            *callbacks,
        ],
    )


def test_resume_equals_uninterrupted(tmp_path):
    full = _cfg(tmp_path / "full", "evaluation.num_archs=0", "trainer.max_epochs=3")
    train(full)
    crash = ["+callbacks.crash._target_=tests.test_train.CrashAtEpoch", "+callbacks.crash.epoch=2"]
    first = _cfg(tmp_path / "part", "evaluation.num_archs=0", "trainer.max_epochs=3", *crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(first)
    ckpt = tmp_path / "part" / "checkpoints" / "last.ckpt"
    resumed = _cfg(
        tmp_path / "resumed", "evaluation.num_archs=0", "trainer.max_epochs=3", f"ckpt_path={ckpt}"
    )
    resumed_summary = train(resumed)
    assert list(resumed_summary["epoch_wall_s"]) == [2]  # a resumed run times its own epochs
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=False)
    assert a["global_step"] == b["global_step"]
    assert a["sampler_rng"] == b["sampler_rng"]
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, msg=k)


@pytest.mark.slow
def test_ddp_on_cpu_with_two_processes(tmp_path):
    """Lightning DDP (gloo) through the real entry point, launched as a script as users do."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "RANK")}
    env = {k: v for k, v in env.items() if not k.startswith("MASTER_")}
    cmd = [
        sys.executable,
        "train.py",
        *TINY,
        "trainer=ddp",
        "threads=1",
        f"hydra.run.dir={tmp_path}",
    ]
    subprocess.run(cmd, cwd=CONF.parent, env=env, check=True, timeout=600, capture_output=True)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_archs"] == 8
    ckpt = torch.load(summary["checkpoint_path"], weights_only=False)
    # Two ranks split 256 training images: 128 each, 4 steps of 32 per epoch, 2 epochs.
    assert ckpt["global_step"] == 8


# The default job's data (embedded CIFAR-10 subset, augmented) on a tiny budget.
EMBEDDED_TINY = [
    "data.data_dir=null",
    "data.batch_size=32",
    "space.channels=4",
    "logger=csv",
    "trainer.max_epochs=2",
    "++trainer.limit_train_batches=3",
    "trainer.enable_progress_bar=false",
    "evaluation.num_archs=8",
    "evaluation.recal_batches=1",
    "evaluation.val_batches=1",
]
RANKING = ("kendall_tau_acc", "spearman_acc", "kendall_tau_pareto", "mean_subnet_acc")


def _embedded_run(tmp_path: Path, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "train", overrides=[*EMBEDDED_TINY, f"paths.output_dir={tmp_path}", *overrides]
        )
    return train(cfg)


def test_same_seed_same_metrics_other_seed_differs(tmp_path):
    keys = (*RANKING, "val_acc", "train_loss")
    a = _embedded_run(tmp_path / "a", "seed=1")
    b = _embedded_run(tmp_path / "b", "seed=1")
    c = _embedded_run(tmp_path / "c", "seed=2")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert a["train_loss"] != c["train_loss"] and a["val_acc"] != c["val_acc"]


@pytest.mark.parametrize(
    ("override", "error", "match"),
    [
        ("trainer.max_epochs=-1", ValueError, "trainer.max_epochs=-1: must be an integer >= 1"),
        ("trainer.max_epochs=0", ValueError, "trainer.max_epochs=0: must be an integer >= 1"),
        ("threads=0", ValueError, "threads=0: must be an integer >= 1 or null"),
        ("model=multi_exit", ValueError, "model=MultiExitModule trains exits on a frozen backbone"),
        ("data.data_dir=/nonexistent", FileNotFoundError, "/nonexistent.*does not exist.*train/"),
    ],
)
def test_bad_input_fails_naming_the_key(tmp_path, override, error, match):
    """Bad values fail at once with the key and what is valid (was: OverflowError, exit 0)."""
    with pytest.raises(error, match=match):
        _embedded_run(tmp_path, override)
    assert not (tmp_path / "summary.json").exists()
