"""HADAS exit training: eq. 4 against hand-computed values, frozen backbone, feature cache."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from datamodules.synthetic import SyntheticDataModule
from lightning_modules.multi_exit import ExitPipeline, FeatureCache, MultiExitModule, exit_loss
from lightning_modules.multi_exit.losses import distillation_kl
from search.spaces import create_space
from tests.conftest import REPO

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


def _softmax(z, t=1.0):
    e = [math.exp(v / t) for v in z]
    return [v / sum(e) for v in e]


def test_eq4_equals_a_hand_computed_value():
    # two samples, two exits, three classes, T = 2
    exits = [
        torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]]),
        torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]),
    ]
    teacher = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    y = torch.tensor([0, 2])
    t = 2.0
    total = 0.0
    for z in exits:
        for n in range(2):
            p = _softmax(z[n].tolist())
            nll = -math.log(p[y[n]])
            pt, ps = _softmax(teacher[n].tolist(), t), _softmax(z[n].tolist(), t)
            kl = sum(a * math.log(a / b) for a, b in zip(pt, ps, strict=True))
            total += nll + t * t * kl
    expected = total / (2 * 2)
    assert exit_loss(exits, teacher, y, t).item() == pytest.approx(expected, rel=1e-6)
    # the KD term vanishes when an exit equals its teacher, and scales with T^2 (not 1/T)
    assert distillation_kl(teacher, teacher, 3.0).abs().max().item() < 1e-6
    assert exit_loss(exits, teacher, y, t).item() != pytest.approx(
        exit_loss(exits, teacher, y, 1.0).item(), rel=1e-3
    )


@pytest.fixture(scope="module")
def pipeline():
    torch.set_num_threads(1)
    space = create_space("nb201", channels=4, cells_per_stage=1)
    return ExitPipeline(
        space, SyntheticDataModule(n_train=96, n_valid=32), first_block=2, backbone_epochs=1,
        exit_epochs=2, batch_size=32,
    )  # fmt: skip


def test_exit_training_leaves_the_backbone_bit_identical_and_moves_the_exits(pipeline):
    net = pipeline.build(ARCH)
    pipeline.pretrain_backbone(net, ARCH)
    before_bb = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    before_ex = {k: v.clone() for k, v in net.exits.state_dict().items()}
    pipeline.train_exits(net, ARCH)
    after = net.backbone.state_dict()
    assert all(torch.equal(before_bb[k], after[k]) for k in before_bb)  # BN buffers included
    assert any(not torch.equal(before_ex[k], v) for k, v in net.exits.state_dict().items())


def test_cached_and_image_batches_give_the_same_loss(pipeline):
    net = pipeline.build(ARCH).eval()
    module = MultiExitModule(net, functools.partial(torch.optim.Adam, lr=1e-3), temperature=3.0)
    x, y = next(iter(pipeline.datamodule.val_dataloader()))
    cache = FeatureCache.build(net, [(x, y)], dtype=torch.float32)
    batch = ([f for f in cache.features], cache.teacher, cache.targets)
    assert module.training_step((x, y), 0).item() == pytest.approx(
        module.training_step(batch, 0).item(), rel=1e-5
    )
    assert len(cache) == len(y) and len(cache[0][0]) == len(net.positions)


def test_the_model_config_composes_and_instantiates(pipeline):
    with initialize_config_dir(str(REPO / "conf" / "model"), version_base="1.3"):
        cfg = compose("multi_exit")
    module = instantiate(cfg, network=pipeline.build(ARCH))
    assert isinstance(module, MultiExitModule) and module.temperature == cfg.temperature
    assert all(not p.requires_grad for p in module.net.backbone.parameters())
