"""NAS-Bench-201 space: arch strings, indices, encodings and the weight-sharing network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search.benchmarks import NB201Table
from search.spaces import create_space, list_spaces
from search.spaces.nb201 import EDGES, OPS, NB201Network, arch_str, is_connected, parse_arch

BEST = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)


@pytest.fixture(scope="module")
def table() -> NB201Table:
    return NB201Table.bundled()


def test_registry_lists_and_builds_every_space():
    assert "nb201" in list_spaces()
    tiny = {"nb201": {"channels": 4, "cells_per_stage": 1}, "ofa_mbv3": {"width_mult": 0.25}}
    assert set(list_spaces()) == set(tiny)  # a new space gets its tiny settings here
    for name in list_spaces():
        space = create_space(name, **tiny[name])
        net = space.build_supernet()
        out = net(torch.randn(2, 3, 32, 32))
        out.sum().backward()
        assert out.shape == (2, 10)
    with pytest.raises(KeyError, match="registered spaces"):
        create_space("nope")


def test_every_table_arch_parses_and_round_trips(table):
    space = create_space("nb201")
    assert set(table.frame["arch_str"]) == set(space.all_archs)
    assert len(set(space.all_archs)) == 15625
    for arch in table.frame["arch_str"][:2000]:
        assert arch_str(parse_arch(arch)) == arch
        assert space.serialize(space.decode(space.encode(arch))) == arch


def test_index_round_trip_and_known_best(table):
    assert table.index_of(BEST) == 6111
    assert table.arch_of(6111) == BEST
    for i in (0, 1, 777, 15624):
        assert table.index_of(table.arch_of(i)) == i


@pytest.mark.parametrize("bad", [-1, 15625, 3.0, "12"])
def test_bad_index_is_a_clear_error(table, bad):
    with pytest.raises(IndexError, match="0..15624"):
        table.arch_of(bad)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "3 nodes"),
        ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_5x5'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "expected '<op>~0'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "must have 2 inputs"),
        ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", "must be '|op~j|...|'"),
        (42, "must be a string"),
    ],
)
def test_malformed_arch_strings_name_the_problem(bad, message):
    with pytest.raises(ValueError, match=message.replace("|", r"\|").replace(".", r"\.")):
        parse_arch(bad)


def test_decode_rejects_out_of_range_vectors():
    space = create_space("nb201")
    with pytest.raises(ValueError, match="6 entries in 0..4"):
        space.decode([0, 1, 2, 3, 4, 5])


def test_disconnected_cells_are_exactly_the_floor_of_the_table(table):
    """Disconnected cells output zeros: the benchmark gives them chance accuracy (10%)."""
    acc = table.frame["acc_cifar10_test"].to_numpy()
    connected = np.array([is_connected(a) for a in table.frame["arch_str"]])
    assert (~connected).sum() > 0
    assert np.all(acc[~connected] <= 10.01)
    assert np.median(acc[connected]) > 80


def test_sampling_is_seeded():
    space = create_space("nb201")
    a = space.sample_unique(np.random.default_rng(3), 50)
    assert a == space.sample_unique(np.random.default_rng(3), 50)
    assert a != space.sample_unique(np.random.default_rng(4), 50)
    assert len({space.serialize(x) for x in a}) == 50


def test_extracted_subnet_is_the_active_path_with_its_weights():
    torch.manual_seed(0)
    space = create_space("nb201", channels=8, cells_per_stage=2)
    supernet = space.build_supernet().eval()
    x = torch.randn(4, 3, 32, 32)
    for arch in space.sample(np.random.default_rng(0), 5) + [BEST]:
        supernet.set_active(arch)
        sub = supernet.extract_subnet(arch).eval()
        torch.testing.assert_close(sub(x), supernet(x))
        # The standalone network holds only the arch's ops: same parameters as a fresh build.
        fresh = space.build_subnet(arch)
        assert sub.state_dict().keys() == fresh.state_dict().keys()


def test_standalone_network_size_matches_the_benchmark():
    """The best cell at C=16, N=5 has 1.073 M parameters (NAS-Bench-201 reports 1.07 MB)."""
    net = create_space("nb201").build_subnet(BEST)
    assert sum(p.numel() for p in net.parameters()) == 1_073_466


def test_set_active_rejects_ops_outside_the_candidates():
    net = NB201Network(4, 1, 10, candidates=[("none", "skip_connect")] * len(EDGES))
    with pytest.raises(ValueError, match="not in this network's candidates"):
        net.set_active(["nor_conv_3x3"] * len(EDGES))
    with pytest.raises(ValueError, match="valid ops"):
        NB201Network(4, 1, 10, candidates=[("conv7",)] * len(EDGES))


def test_every_op_on_every_edge_forwards_and_backwards():
    net = create_space("nb201", channels=4, cells_per_stage=1).build_supernet()
    for op in OPS:
        net.set_active([op] * len(EDGES))
        net.zero_grad()
        net(torch.randn(2, 3, 32, 32)).sum().backward()
        grads = [p.grad for n, p in net.named_parameters() if f".{op}." in n]
        if op.startswith("nor_conv"):
            assert grads and all(g is not None for g in grads)
