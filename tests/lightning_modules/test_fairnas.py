"""FairNAS strict fairness: every op trained exactly once per step, one update per step."""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from datamodules.synthetic import SyntheticDataModule
from lightning_modules.samplers import FairSampler, UniformSampler, make_sampler
from lightning_modules.supernet import SupernetModule
from search.spaces import create_space
from search.spaces.nb201 import EDGES, OPS


def test_fair_sampler_covers_every_op_of_every_edge_once():
    sampler = FairSampler([OPS] * len(EDGES), np.random.default_rng(0))
    for _ in range(20):
        paths = sampler.paths()
        assert len(paths) == len(OPS)
        for e in range(len(EDGES)):
            assert sorted(p[e] for p in paths) == sorted(OPS)


def test_fair_sampler_permutes_edges_independently_and_is_seeded():
    a = [FairSampler([OPS] * 6, np.random.default_rng(1)).paths() for _ in range(2)]
    assert a[0] == a[1]
    many = FairSampler([OPS] * 6, np.random.default_rng(2))
    # Independent permutations: paths mix ops across edges (not all-same-op paths).
    assert any(len(set(p)) > 1 for _ in range(5) for p in many.paths())
    with pytest.raises(ValueError, match="same number of candidate ops"):
        FairSampler([OPS, OPS[:2]], np.random.default_rng(0))


def test_uniform_sampler_is_uniform_per_edge():
    sampler = UniformSampler([OPS] * 6, np.random.default_rng(0))
    counts = Counter(p[0][3] for p in (sampler.paths() for _ in range(5000)))
    assert set(counts) == set(OPS)
    assert max(counts.values()) / min(counts.values()) < 1.15
    with pytest.raises(ValueError, match="valid: \\['fairnas', 'spos'\\]"):
        make_sampler("darts", [OPS], np.random.default_rng(0))


def _reaches_output(node: int, ops: tuple[str, ...]) -> bool:
    if node == 3:
        return True
    return any(
        op != "none" and s == node and _reaches_output(d, ops)
        for (d, s), op in zip(EDGES, ops, strict=True)
    )


def _module(sampler: str, lr: float = 0.1) -> SupernetModule:
    torch.manual_seed(0)
    net = create_space("nb201", channels=4, cells_per_stage=1).build_supernet()
    opt = lambda params: torch.optim.SGD(params, lr=lr)  # noqa: E731 (plain SGD: update = -lr * grad)
    return SupernetModule(net, opt, scheduler=None, sampler=sampler, grad_clip_norm=None, seed=7)


def _fit_one_step(module: SupernetModule, tmp_path) -> None:
    dm = SyntheticDataModule(n_train=16, batch_size=16)
    trainer = pl.Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=dm)


def test_fairnas_step_gives_each_op_exactly_one_gradient_and_one_update(tmp_path):
    module = _module("fairnas")
    before = copy.deepcopy(module.net)
    expected_paths = FairSampler(module.net.candidates, np.random.default_rng(7)).paths()

    # Count gradient contributions per parameter tensor during the step.
    counts: Counter[str] = Counter()
    for name, p in module.net.named_parameters():
        p.register_hook(lambda g, name=name: counts.update([name]))
    steps = []
    orig_step = torch.optim.SGD.step

    def counting_step(self, *a, **k):
        steps.append(1)
        return orig_step(self, *a, **k)

    torch.optim.SGD.step = counting_step
    try:
        _fit_one_step(module, tmp_path)
    finally:
        torch.optim.SGD.step = orig_step

    assert len(steps) == 1
    # Each op is sampled in exactly one of the m paths; it receives that path's gradient when
    # its edge output reaches the cell output (an edge feeding only 'none' edges is dead).
    expected = Counter()
    for ops in expected_paths:
        for (d, s), op in zip(EDGES, ops, strict=True):
            expected[(f"edge_{d}_{s}", op)] += _reaches_output(d, ops)
    op_params = [n for n, _ in module.net.named_parameters() if ".edges." in n]
    assert op_params
    for name in op_params:
        edge, op = name.split(".")[3:5]
        assert counts[name] == expected[(edge, op)] <= 1, f"{name}: {counts[name]} gradients"
    assert sum(counts[n] for n in op_params) > len(op_params) // 2
    m = len(OPS)
    assert counts["stem.0.weight"] == m and counts["classifier.weight"] == m

    # Brute-force reference: sum of the m paths' gradients, one SGD update of lr 0.1.
    dm = SyntheticDataModule(n_train=16, batch_size=16)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    ref = copy.deepcopy(before).train()
    for ops in expected_paths:
        ref.set_active(ops)
        nn.functional.cross_entropy(ref(x), y).backward()
    with torch.no_grad():
        for p in ref.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    for (name, p), q in zip(module.net.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)


def test_spos_step_trains_exactly_one_path(tmp_path):
    module = _module("spos")
    before = copy.deepcopy(module.net.state_dict())
    _fit_one_step(module, tmp_path)
    (path,) = UniformSampler(module.net.candidates, np.random.default_rng(7)).paths()
    changed_ops = {
        (n.split(".")[3], n.split(".")[4])
        for n, p in module.net.state_dict().items()
        if ".edges." in n and p.dtype.is_floating_point and not torch.equal(p, before[n])
    }
    trained = {
        (f"edge_{d}_{s}", op)
        for (d, s), op in zip(EDGES, path, strict=True)
        if op.startswith("nor_conv")
    }
    assert changed_ops == trained
