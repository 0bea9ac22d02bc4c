"""train.py with progressive shrinking on the elastic MobileNetV3 (no ground-truth table)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException

from train import train

CONF = Path(__file__).resolve().parents[1] / "conf"
PHASES = (
    "model.phases=[{name:largest,epochs:1},{name:kernel,epochs:1},"
    "{name:depth,epochs:1,n_subnets:2},{name:expand,epochs:1,n_subnets:2}]"
)
# two narrow stages at 12-16 px: a sub-second step on one CPU thread
TINY_SPACE = (
    "space=ofa_mbv3",
    "space.width_mult=0.25",
    "space.widths=[24,40]",
    "space.strides=[1,2]",
    "space.acts=[relu,h_swish]",
    "space.se=[false,true]",
    "space.resolutions=[12,14,16]",
)
TINY = [
    "model=ofa",
    "data=synthetic",
    "data.image_size=16",
    "data.n_train=64",
    "logger=csv",
    PHASES,
    "trainer.max_epochs=4",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "evaluation.num_archs=3",
    "evaluation.recal_batches=2",
    "evaluation.val_batches=1",
]


def _cfg(tmp_path: Path, *overrides: str, space: tuple[str, ...] = TINY_SPACE, base=TINY):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            "train", overrides=[*space, *base, f"paths.output_dir={tmp_path}", *overrides]
        )


def test_train_ofa_scores_max_min_and_sampled_subnets(tmp_path):
    summary = train(_cfg(tmp_path))
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary, default=float))
    sampled = summary["acc_top1_sampled"]
    assert len(sampled) == 3 == summary["n_archs"]
    accs = [summary["acc_top1_max_arch"], summary["acc_top1_min_arch"], *sampled]
    assert all(0 <= a <= 100 for a in accs)
    assert summary["acc_top1_range"] == [min(accs), max(accs)]
    assert summary["mean_subnet_acc"] == pytest.approx(np.mean(sampled))
    assert not [k for k in summary if "tau" in k or "spearman" in k]  # no ground truth
    records = [
        json.loads(line) for line in (tmp_path / "subnet_eval.jsonl").read_text().splitlines()
    ]
    assert [r["acc_top1"] for r in records] == accs
    from search.spaces import create_space

    space = create_space(**summary["space"])
    assert space.stages == 2 and space.resolutions == (12, 14, 16)
    assert records[0]["arch"] == space.max_arch() and records[1]["arch"] == space.min_arch()
    ckpt = torch.load(summary["checkpoint_path"], weights_only=False)
    assert ckpt["epoch"] == 3 and ckpt["ofa"] == {"channels_reorganized": True}
    assert ckpt["hyper_parameters"]["phases"][3] == {"name": "expand", "epochs": 1, "n_subnets": 2}
    assert summary["sampler"] == "spos"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["trainer.max_epochs=5"], "trainer.max_epochs=5 but model.phases last 4 epochs"),
        (["evaluation=nb201"], "NAS-Bench-201 table .* no space=ofa_mbv3 architectures"),
        (["model.phases=[{name:kernel,depths:[4]}]"], "sets depths, but depth is elastic only"),
    ],
)
def test_bad_ofa_config_fails_naming_it(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        train(_cfg(tmp_path, *overrides))
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ([], InstantiationException, r"needs an elastic supernet .* NB201Network lacks"),
        (
            ["model=fairnas", "evaluation=ofa_mbv3"],
            ValueError,
            r"space 'nb201' has no \['max_arch', 'min_arch'\]: evaluation=ofa_mbv3",
        ),
    ],
)
def test_a_space_that_is_not_elastic_fails_naming_it(tmp_path, overrides, error, match):
    base = [o for o in TINY if not o.startswith("model.phases")] if overrides else TINY
    cfg = _cfg(tmp_path, *overrides, space=("space=nb201_cpu", "space.channels=4"), base=base)
    with pytest.raises(error, match=match):
        train(cfg)
