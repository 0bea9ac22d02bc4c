"""Architectures as mappings: canonical forms, stable ids, validation, the supernet protocol."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from search.spaces import (
    DecisionSpace,
    SearchSpace,
    Supernet,
    arch_id,
    canonical_json,
    create_space,
)
from search.spaces.nb201 import DECISIONS, OPS, ops_of

BEST = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)


class ToySpace(DecisionSpace):
    """Decisions with integer and string choices, as an elastic space has."""

    name = "toy"

    @property
    def decisions(self):
        return {"depth": (2, 3, 4), "ks": (3, 5, 7), "act": ("relu", "hswish")}


def test_canonical_json_and_id_ignore_key_order():
    a = {"ks": 5, "depth": 3, "act": "relu"}
    b = {"act": "relu", "depth": 3, "ks": 5}
    assert canonical_json(a) == canonical_json(b) == '{"act":"relu","depth":3,"ks":5}'
    assert arch_id(a) == arch_id(b)
    assert arch_id(a) != arch_id({**a, "ks": 7})
    assert len(arch_id(a)) == 16


def test_decision_space_round_trips_every_form():
    space = ToySpace()
    rng = np.random.default_rng(0)
    for arch in space.sample(rng, 30):
        text = space.serialize(arch)
        assert json.loads(text) == arch
        assert space.parse(text) == arch
        assert space.decode(space.encode(arch)) == arch
        assert space.arch_id(text) == space.arch_id(arch)
    assert isinstance(space.parse('{"act":"relu","depth":2,"ks":3}')["depth"], int)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"depth": 2, "ks": 3}, r"missing decisions \['act'\]"),
        ({"depth": 2, "ks": 3, "act": "relu", "width": 1}, r"unknown decisions \['width'\]"),
        (
            {"depth": 5, "ks": 3, "act": "relu"},
            r"invalid choice 5 for 'depth'.*\[2, 3, 4\]",
        ),
        ("not json", "canonical JSON form"),
        (["relu"], "mapping of decision -> choice"),
    ],
)
def test_decision_space_names_what_is_wrong(bad, message):
    with pytest.raises(ValueError, match=message):
        ToySpace().parse(bad)
    with pytest.raises(ValueError, match="one entry per decision"):
        ToySpace().decode([0, 0, 2])


def test_nb201_forms_agree():
    space = create_space("nb201", channels=4, cells_per_stage=1)
    assert isinstance(space, SearchSpace)
    mapping = space.parse(BEST)
    assert list(mapping) == list(DECISIONS) and mapping["3<-0"] == "skip_connect"
    assert space.serialize(mapping) == space.serialize(BEST) == BEST
    assert space.parse(ops_of(BEST)) == mapping
    assert space.arch_id(BEST) == space.arch_id(mapping) == arch_id(mapping)
    assert np.array_equal(space.encode(BEST), space.encode(mapping))
    with pytest.raises(ValueError, match=r"missing \['3<-2'\]"):
        space.parse({k: v for k, v in mapping.items() if k != "3<-2"})
    with pytest.raises(ValueError, match="unknown op 'conv7'"):
        space.parse({**mapping, "1<-0": "conv7"})


def test_nb201_network_follows_the_supernet_protocol():
    space = create_space("nb201", channels=4, cells_per_stage=1)
    torch.manual_seed(0)
    net = space.build_supernet().eval()
    assert isinstance(net, Supernet)
    assert net.decisions == space.decisions
    rng = np.random.default_rng(0)
    x = torch.randn(2, 3, 8, 8)
    for _ in range(3):
        arch = net.sample(rng)
        assert set(arch) == set(DECISIONS) and all(op in OPS for op in arch.values())
        net.set_active(arch)
        assert net.active_arch == space.serialize(arch)
        sub = net.extract_subnet(arch).eval()
        with torch.no_grad():
            torch.testing.assert_close(sub(x), net(x))
    # a pruned supernet samples only what it still holds
    pruned = type(net)(4, 1, 10, candidates=[("skip_connect", "nor_conv_1x1")] * len(DECISIONS))
    drawn = {op for _ in range(20) for op in pruned.sample(rng).values()}
    assert drawn == {"skip_connect", "nor_conv_1x1"}
