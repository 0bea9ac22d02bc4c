"""BN recalibration against brute-force statistics, and resumable sub-network evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from search.evaluators.subnet import (
    SubnetEvaluator,
    accuracy,
    fingerprint,
    recalibrate_bn,
)
from search.spaces import create_space


def test_recalibrated_bn_statistics_equal_the_batch_average():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    net = nn.Sequential(conv, nn.BatchNorm2d(4))
    net[1].running_mean.fill_(7.0)  # stale statistics must be discarded
    batches = [torch.randn(8, 3, 6, 6) * (i + 1) for i in range(3)]
    recalibrate_bn(net, batches)
    with torch.no_grad():
        feats = [conv(x) for x in batches]
    mean = torch.stack([f.mean((0, 2, 3)) for f in feats]).mean(0)
    var = torch.stack([f.transpose(0, 1).reshape(4, -1).var(1, unbiased=True) for f in feats]).mean(
        0
    )
    torch.testing.assert_close(net[1].running_mean, mean)
    torch.testing.assert_close(net[1].running_var, var)
    assert net[1].momentum == 0.1 and not net.training


def test_accuracy_counts_correct_predictions():
    net = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 1, 1])
    assert accuracy(net, [(x, y)])["acc_top1"] == pytest.approx(75.0)


@pytest.fixture
def setup_eval():
    torch.manual_seed(0)
    space = create_space("nb201", channels=4, cells_per_stage=1)
    supernet = space.build_supernet()
    gen = torch.Generator().manual_seed(0)
    recal = [torch.randn(16, 3, 32, 32, generator=gen) for _ in range(2)]
    val = [(torch.randn(16, 3, 32, 32, generator=gen), torch.randint(0, 10, (16,), generator=gen))]
    archs = space.sample_unique(np.random.default_rng(0), 5)
    return supernet, recal, val, archs


def test_evaluation_leaves_the_supernet_untouched(setup_eval):
    supernet, recal, val, archs = setup_eval
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    SubnetEvaluator(recal, val).evaluate(supernet, archs, progress=False)
    for k, v in supernet.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_a_crash_loses_no_finished_evaluation(setup_eval, tmp_path, monkeypatch):
    supernet, recal, val, archs = setup_eval
    full = SubnetEvaluator(recal, val).evaluate(supernet, archs, progress=False)

    path = tmp_path / "evals.jsonl"
    ev = SubnetEvaluator(recal, val, results_path=path)
    calls = []
    original = SubnetEvaluator.evaluate_one

    def crashing(self, net, arch):
        calls.append(arch)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return original(self, net, arch)

    monkeypatch.setattr(SubnetEvaluator, "evaluate_one", crashing)
    with pytest.raises(RuntimeError, match="killed"):
        ev.evaluate(supernet, archs, progress=False)
    assert len(path.read_text().splitlines()) == 2

    calls.clear()
    monkeypatch.setattr(
        SubnetEvaluator,
        "evaluate_one",
        lambda self, n, a: (calls.append(a), original(self, n, a))[1],
    )
    resumed = SubnetEvaluator(recal, val, results_path=path).evaluate(
        supernet, archs, progress=False
    )
    assert calls == archs[2:]  # only the unfinished ones
    assert [r["acc_top1"] for r in resumed] == pytest.approx([r["acc_top1"] for r in full])
    assert [json.loads(line)["arch"] for line in path.read_text().splitlines()] == archs


def test_resume_ignores_results_of_other_weights(setup_eval, tmp_path):
    supernet, recal, val, archs = setup_eval
    path = tmp_path / "evals.jsonl"
    SubnetEvaluator(recal, val, results_path=path).evaluate(supernet, archs[:3], progress=False)
    with torch.no_grad():  # another training run: different shared weights
        next(supernet.parameters()).add_(0.5)
    calls = []
    ev = SubnetEvaluator(recal, val, results_path=path)
    original = ev.evaluate_one
    ev.evaluate_one = lambda n, a: (calls.append(a), original(n, a))[1]
    ev.evaluate(supernet, archs, progress=False)
    assert calls == archs  # nothing reused from the other weights
    # Same weights but other validation data: also re-evaluated.
    calls.clear()
    other_val = [(val[0][0] + 1.0, val[0][1])]
    ev2 = SubnetEvaluator(recal, other_val, results_path=path)
    original2 = ev2.evaluate_one
    ev2.evaluate_one = lambda n, a: (calls.append(a), original2(n, a))[1]
    ev2.evaluate(supernet, archs[:2], progress=False)
    assert calls == archs[:2]


def test_fingerprint_tracks_weights_and_data(setup_eval):
    supernet, recal, _, _ = setup_eval
    a = fingerprint(supernet, recal)
    assert a == fingerprint(supernet, recal)
    assert a != fingerprint(supernet, [r + 1 for r in recal])
    with torch.no_grad():
        next(supernet.parameters()).mul_(2)
    assert a != fingerprint(supernet, recal)
