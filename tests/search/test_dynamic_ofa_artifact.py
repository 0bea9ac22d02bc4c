"""The family artifact: round trip of family.json and the BN safetensors, and the BN statistics
saved for a member reproducing its recalibrated extracted sub-network through load_bn_state."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hardware.runtime.family import bn_tensors, load_bn, load_family, save_bn, save_family
from search.evaluators.subnet import recalibrate_bn


def _level(aid: str, acc: float, lat: float) -> dict:
    return {"arch": {"resolution": 32}, "arch_id": aid, "acc_top1": acc, "latency_ms": lat}


def test_round_trip_keeps_tensors_and_fields_and_sorts_levels(tmp_path):
    g = torch.Generator().manual_seed(0)
    states = {
        aid: {
            "stages.0.blocks.0.expand.bn.running_mean": torch.randn(8, generator=g),
            "stages.0.blocks.0.expand.bn.running_var": torch.rand(8, generator=g),
            "stages.0.blocks.0.expand.bn.weight": torch.randn(8, generator=g),  # not BN stats
            "stages.0.blocks.0.expand.bn.num_batches_tracked": torch.tensor(3),
        }
        for aid in ("aaaa", "bbbb")
    }
    for aid, state in states.items():
        save_bn(tmp_path, aid, state)
    path = save_family(  # the BN files are on disk already, as the family search leaves them
        tmp_path,
        {"name": "ofa_mbv3", "width_mult": 0.5},
        {"cpu_1t": [_level("bbbb", 72, 3.0), _level("aaaa", 70, 1.0)],
         "cpu_2t": [_level("aaaa", 70, 0.7)]},
        devices={"cpu_1t": {"threads": 1}, "cpu_2t": {"threads": 2}},
        checkpoint="/ckpt/last.ckpt",
        weights_fingerprint="0123456789abcdef",
        bn_images=2000,
    )  # fmt: skip
    doc = json.loads(path.read_text())
    assert load_family(tmp_path).levels("cpu_1t")[1].arch_id == "bbbb"
    assert (doc["format"], doc["bn_images"], doc["weights_fingerprint"]) == (
        1,
        2000,
        "0123456789abcdef",
    )
    assert doc["space"] == {"name": "ofa_mbv3", "width_mult": 0.5}
    levels = doc["processors"]["cpu_1t"]["levels"]
    assert [(lv["level"], lv["arch_id"]) for lv in levels] == [(1, "aaaa"), (2, "bbbb")]
    assert doc["processors"]["cpu_2t"]["device"] == {"threads": 2}
    for aid, state in states.items():
        loaded = load_bn(tmp_path, aid)
        assert sorted(loaded) == sorted(bn_tensors(state)) and len(loaded) == 2
        for k, v in loaded.items():
            assert torch.equal(v, state[k])


def test_writing_a_member_without_its_bn_file_or_fields_is_refused(tmp_path):
    space = {"name": "ofa_mbv3"}
    with pytest.raises(ValueError, match="no BN file"):
        save_family(tmp_path, space, {"cpu": [_level("zz", 1, 1)]})
    save_bn(tmp_path, "zz", {"a.running_mean": torch.zeros(1)})
    bad = {"arch_id": "zz", "acc_top1": 1.0}
    with pytest.raises(ValueError, match="lacks"):
        save_family(tmp_path, space, {"cpu": [bad]})
    with pytest.raises(ValueError, match="no running_mean"):
        save_bn(tmp_path, "yy", {"a.weight": torch.zeros(1)})
    with pytest.raises(FileNotFoundError, match="yy"):
        load_bn(tmp_path, "yy")


def test_saved_bn_stats_reproduce_the_recalibrated_subnet_in_the_supernet(tmp_path):
    from search.spaces import create_space

    space = create_space("ofa_mbv3", width_mult=0.25, resolutions=(24, 32), depths=(1, 2),
                         widths=(16, 24), strides=(1, 2), acts=("relu", "h_swish"),
                         se=(False, True))  # fmt: skip
    supernet = space.build_supernet().eval()
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(16, 3, 32, 32, generator=g) for _ in range(3)]
    x = torch.randn(4, 3, 32, 32, generator=g)
    sub = supernet.extract_subnet(arch)
    recalibrate_bn(sub, batches)
    want = sub(x)
    aid = space.arch_id(arch)
    save_bn(tmp_path, aid, sub.state_dict())
    supernet.set_active(arch)
    before = supernet(x)
    assert not torch.allclose(before, want, atol=1e-4)  # the shared statistics differ
    supernet.load_bn_state(load_bn(tmp_path, aid))
    torch.testing.assert_close(supernet(x), want, rtol=1e-5, atol=1e-5)
