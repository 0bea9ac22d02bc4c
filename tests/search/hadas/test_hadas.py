"""HADAS search: eq. 5-7, the inner engine's determinism and the bi-level search's resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from datamodules.synthetic import SyntheticDataModule
from hardware.dvfs import DvfsModel
from lightning_modules.multi_exit import ExitPipeline
from search.analytics import compare_fronts
from search.hadas import DynamicEvaluation, dissimilarity, dynamic_score, run_hadas, run_inner
from search.runner import SearchCallback
from search.spaces import create_space
from tests.conftest import REPO

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


def test_dynamic_score_equals_eq_5_to_7_evaluated_by_hand():
    n, e, lat, gamma = [0.5, 0.3, 0.7], [0.2, 0.5, 0.9], [0.3, 0.6, 0.8], 2.0
    # eq. 7: dissim_1 = 1 (nothing before), dissim_2 = 1 - 0.5, dissim_3 = 1 - max(0.5, 0.3)
    d = [1.0, 0.5, 0.5]
    scores = [n[i] * e[i] * lat[i] * d[i] ** gamma for i in range(3)]
    assert dissimilarity(n).tolist() == pytest.approx(d)
    assert dynamic_score(n, e, lat, gamma) == pytest.approx(sum(scores) / 3)
    assert dynamic_score(n, e, lat, 0.0) == pytest.approx(
        sum(a * b * c for a, b, c in zip(n, e, lat, strict=True)) / 3
    )
    with pytest.raises(ValueError, match="at least one sampled exit"):
        dynamic_score([], [], [], 1.0)


def test_compare_fronts_against_hand_values():
    A = np.array([[0.0, 1.0], [1.0, 0.0]])
    B = np.array([[1.0, 1.0]])
    out = compare_fronts(A, B, ref=2.0)
    # union box [0, 1]^2; A covers 4 - 1 = 3, B covers 1
    assert out["hv_a"] == pytest.approx(3.0) and out["hv_b"] == pytest.approx(1.0)
    assert out["rod_a_over_b"] == 1.0 and out["rod_b_over_a"] == 0.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(1)
    dvfs = DvfsModel(instantiate(OmegaConf.load(REPO / "conf" / "dvfs" / "jetson_tx2.yaml")))
    data = SyntheticDataModule(n_train=96, n_valid=48, batch_size=32, eval_batch_size=48)
    pipeline = ExitPipeline(
        create_space("nb201", channels=4, cells_per_stage=1), data, first_block=2,
        backbone_epochs=1, exit_epochs=1, batch_size=32,
        cache_dir=tmp_path_factory.mktemp("weights"),
    )  # fmt: skip
    return dvfs, pipeline, list(data.val_dataloader())


def _inner(setup, seed, url):
    dvfs, pipeline, valid = setup
    evaluation = DynamicEvaluation(pipeline(ARCH), valid, dvfs, 5.0, 20.0, gamma=1.0)
    result = run_inner(evaluation, ARCH, budget=16, pop_size=8, archive=url, seed=seed)
    return [(e.arch, e.metrics) for e in result.evaluations], evaluation


def test_inner_search_is_deterministic_given_its_seed(setup, tmp_path):
    a, evaluation = _inner(setup, 0, f"sqlite:///{tmp_path / 'a.db'}")
    b, _ = _inner(setup, 0, f"sqlite:///{tmp_path / 'b.db'}")
    c, _ = _inner(setup, 1, f"sqlite:///{tmp_path / 'c.db'}")
    assert a == b and a != c
    # the DVFS decisions are the domains the TX2 GPU model uses; no exit at all is the static net
    assert set(evaluation.space.domains) == {"gpu", "emc"}
    static = evaluation.metrics_of((), dvfs_top := setup[0].space.max_setting())
    assert static["energy_gain"] == pytest.approx(0.0, abs=1e-9) and dvfs_top
    assert static["acc_top1"] == pytest.approx(evaluation.static_acc)


class Interrupt(Exception):
    pass


class KillAfter(SearchCallback):
    def __init__(self, n):
        self.n = n

    def on_evaluation(self, problem, evaluation, paid):
        self.n -= 1
        if self.n < 0:
            raise Interrupt


def _hadas(setup, out, **kw):
    dvfs, pipeline, valid = setup
    return run_hadas(
        pipeline, valid, dvfs, out, outer_budget=20, outer_pop=10, max_backbones=2,
        inner_budget=12, inner_pop=6, settings=pipeline.settings(), **kw,
    )  # fmt: skip


def test_bilevel_search_resumed_after_a_kill_gives_the_same_fronts(setup, tmp_path):
    whole = _hadas(setup, tmp_path / "whole")
    with pytest.raises(Interrupt):  # killed in the middle of the second backbone's inner search
        _hadas(setup, tmp_path / "killed", inner_callbacks=[KillAfter(12 + 5)])
    resumed = _hadas(setup, tmp_path / "killed", resume=True)
    for name in ("static_front.json", "dynamic_front.json"):
        assert json.loads((tmp_path / "whole" / name).read_text()) == json.loads(
            (tmp_path / "killed" / name).read_text()
        )
    assert resumed["at_equal_accuracy"] == whole["at_equal_accuracy"]
    assert len(whole["backbones"]) == 2 and (tmp_path / "whole" / "static_vs_dynamic.png").is_file()
    assert {"hv_a", "rod_a_over_b"} <= set(whole["dynamic_vs_static"])


def test_path_costs_anchor_to_the_static_backbone_and_grow_with_depth(setup):
    from search.hadas import ExitCosts, PathCostModel

    dvfs, pipeline, _ = setup
    net = pipeline.build(ARCH)
    costs = ExitCosts.profile(net)
    model = PathCostModel(costs, dvfs, static_latency_ms=5.0, static_energy_mj=20.0)
    top = dvfs.space.max_setting()
    assert model.at(None, (), top) == pytest.approx((5.0, 20.0))  # the static net at the top
    lat, en = model.per_exit(net.positions, top)
    assert np.all(np.diff(lat) > 0) and np.all(np.diff(en) > 0)  # deeper exits cost more
    assert en[-1] > 20.0  # running through every exit head costs more than the backbone alone
    slow = {**top, "gpu": float(dvfs.space.levels("gpu")[0])}
    assert model.at(net.positions[0], net.positions, slow)[0] > lat[0]
    # FLOPs of a path are the sum of its parts
    flops, _ = costs.path(net.positions[0], net.positions)
    p = net.positions[0]
    parts = costs.stem[0] + sum(b[0] for b in costs.blocks[: p + 1]) + costs.heads[p][0]
    assert flops == pytest.approx(parts)
