"""Progressive-shrinking phases: validation, per-phase choices, the sampler, the KD loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightning_modules.ofa import ProgressiveShrinkingModule, ShrinkingSampler, parse_phases
from lightning_modules.ofa.phases import arch_stats, phase_choices
from search.spaces import create_space
from tests.lightning_modules.test_ofa_module import TINY_SPACE, sgd

OFA_PHASES = [
    {"name": "largest", "epochs": 2},
    {"name": "kernel", "epochs": 1},
    {"name": "depth", "epochs": 1, "n_subnets": 2, "depths": [4, 3]},
    {"name": "depth", "epochs": 1, "n_subnets": 2},
    {"name": "expand", "epochs": 1, "n_subnets": 4, "expand_ratios": [6, 4]},
    {"name": "expand", "epochs": 1, "n_subnets": 4},
]


@pytest.fixture(scope="module")
def space():
    return create_space("ofa_mbv3", **TINY_SPACE)


def _by_dim(decisions):
    from lightning_modules.ofa.phases import dimension_of

    out: dict[str, list[str]] = {}
    for label in decisions:
        out.setdefault(dimension_of(label), []).append(label)
    return out


def test_each_phase_samples_only_its_choices_and_all_of_them(space):
    decisions, top = space.decisions, space.max_arch()
    dims = _by_dim(decisions)
    assert set(dims) == {"resolution", "ks", "depth", "expand"}
    phases = parse_phases(OFA_PHASES)
    sampler = ShrinkingSampler(decisions, top, phases, np.random.default_rng(0))
    res, ks = set(decisions["resolution"]), {3, 5, 7}
    expected = {  # phase index -> dimension -> the choices it may take
        0: {"resolution": {top["resolution"]}, "ks": {7}, "depth": {4}, "expand": {6}},
        1: {"resolution": res, "ks": ks, "depth": {4}, "expand": {6}},
        2: {"resolution": res, "ks": ks, "depth": {3, 4}, "expand": {6}},
        3: {"resolution": res, "ks": ks, "depth": {2, 3, 4}, "expand": {6}},
        4: {"resolution": res, "ks": ks, "depth": {2, 3, 4}, "expand": {4, 6}},
        5: {"resolution": res, "ks": ks, "depth": {2, 3, 4}, "expand": {3, 4, 6}},
    }
    for i, phase in enumerate(phases):
        seen = {dim: set() for dim in dims}
        for _ in range(60):
            step = sampler.sample(i, phase.n_subnets)
            assert len(step) == phase.n_subnets
            assert len({a["resolution"] for a in step}) == 1  # one resolution per batch
            for arch in step:
                space.parse(arch)  # a valid architecture of the space
                for dim, labels in dims.items():
                    seen[dim] |= {arch[label] for label in labels}
        # never outside the phase's choices, and every allowed choice is drawn
        assert seen == expected[i], (i, phase.name)
    assert all(a == top for a in sampler.sample(0, 1))  # largest: the max arch itself


def test_sampler_is_reproducible_from_its_generator_state(space):
    phases = parse_phases(OFA_PHASES)
    a = ShrinkingSampler(space.decisions, space.max_arch(), phases, np.random.default_rng(3))
    a.sample(4, 4)
    state = a.rng.bit_generator.state
    b = ShrinkingSampler(space.decisions, space.max_arch(), phases, np.random.default_rng(99))
    b.rng.bit_generator.state = state
    assert a.sample(5, 4) == b.sample(5, 4)
    c = ShrinkingSampler(space.decisions, space.max_arch(), phases, np.random.default_rng(4))
    assert [c.sample(5, 4) for _ in range(3)] != [a.sample(5, 4) for _ in range(3)]


def test_arch_stats_count_only_blocks_that_run():
    arch = {"resolution": 28, "stage1.depth": 2, "stage2.depth": 3}
    for s in (1, 2):
        for j in range(4):
            arch[f"stage{s}.block{j}.ks"] = 7 if j < 2 else 3
            arch[f"stage{s}.block{j}.expand"] = 6 if j == 0 else 4
    # ks of the 5 running blocks: 7, 7 | 7, 7, 3; expand: 6, 4 | 6, 4, 4
    assert arch_stats(arch) == {"depth": 2.5, "ks": 31 / 5, "expand": 24 / 5, "resolution": 28.0}


def test_kd_loss_equals_hand_computed_kl():
    module = ProgressiveShrinkingModule(
        create_space("ofa_mbv3", **TINY_SPACE).build_supernet(),
        sgd,
        OFA_PHASES,
        kd_weight=0.5,
        kd_temperature=2.0,
    )
    student = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])
    T = 2.0

    def softmax(z):
        e = [math.exp(v / T) for v in z]
        return [v / sum(e) for v in e]

    kls = []
    for s, t in zip(student.tolist(), teacher.tolist(), strict=True):
        p, q = softmax(t), softmax(s)
        kls.append(T**2 * sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True)))
    # row 1 by hand: p = (sqrt3, 1) / (1 + sqrt3) = (0.6339746, 0.3660254), q = (1/2, 1/2)
    by_hand = 4 * (0.6339746 * math.log(1.2679492) + 0.3660254 * math.log(0.7320508))
    assert kls[0] == pytest.approx(by_hand, rel=1e-6)
    kd = module.kd_loss(student, teacher)
    assert float(kd) == pytest.approx(sum(kls) / 2, rel=1e-6)
    y = torch.tensor([0, 1])
    ce = -(math.log(0.5) + math.log(math.exp(-1) / (math.exp(1) + math.exp(-1)))) / 2
    loss, ce_t, kd_t = module.subnet_loss(student, y, teacher)
    assert float(ce_t) == pytest.approx(ce, rel=1e-6)
    assert float(loss) == pytest.approx(ce + 0.5 * sum(kls) / 2, rel=1e-6)
    loss, _, kd_t = module.subnet_loss(student, y, None)  # the largest phase: no teacher
    assert float(kd_t) == 0 and float(loss) == pytest.approx(ce, rel=1e-6)


@pytest.mark.parametrize(
    ("phases", "match"),
    [
        ([], "phases is empty"),
        ([{"name": "width", "epochs": 1}], r"phases\[0\].name='width': must be one of"),
        ([{"name": "kernel", "epochs": 0}], r"phases\[0\] \(kernel\).epochs=0: must be an integer"),
        ([{"name": "largest", "n_subnets": 2}], "largest phase trains the max architecture only"),
        ([{"name": "depth"}, {"name": "kernel"}], "comes after a depth phase: .* in the order"),
        ([{"name": "kernel", "depths": [4, 3]}], "sets depths, but depth is elastic only from"),
        ([{"name": "depth", "epoch": 1}], r"unknown keys \['epoch'\]"),
        ([{"name": "depth", "depths": []}], "depths=.*must be a non-empty list"),
        ([{"name": "depth", "depths": [5, 4]}], r"depths \[5, 4\] has \[5\], not a choice"),
        ([{"name": "expand", "expand_ratios": [8]}], r"expand_ratios \[8\] has \[8\]"),
    ],
)
def test_bad_phase_config_raises_naming_it(space, phases, match):
    with pytest.raises(ValueError, match=match):
        ProgressiveShrinkingModule(space.build_supernet(), sgd, phases)


def test_a_supernet_that_is_not_elastic_is_refused():
    nb201 = create_space("nb201", channels=4, cells_per_stage=1).build_supernet()
    with pytest.raises(ValueError, match=r"needs an elastic supernet .* lacks \['max_arch'"):
        ProgressiveShrinkingModule(nb201, sgd, OFA_PHASES)
    with pytest.raises(ValueError, match="the only valid sampler is 'spos'"):
        ProgressiveShrinkingModule(nb201, sgd, OFA_PHASES, sampler="fairnas")


def test_phase_choices_default_to_the_space_and_max(space):
    top = space.max_arch()
    depth = parse_phases([{"name": "depth", "depths": [4, 3]}])[0]
    choices = phase_choices(depth, space.decisions, top)
    for label, c in choices.items():
        if label.endswith(".depth"):
            assert c == (4, 3)
        elif label.endswith(".expand"):
            assert c == (top[label],)
        else:
            assert c == tuple(space.decisions[label])
