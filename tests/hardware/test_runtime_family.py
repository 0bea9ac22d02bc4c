"""The family artifact: save/load round trip and clear errors on bad directories."""

from __future__ import annotations

import json

import pytest
import torch

from hardware.runtime.family import FamilyFormatError, Level, load_family, save_family


def write_family(tmp_path, procs=("cpu_1t", "cpu_2t")):
    g = torch.Generator().manual_seed(0)
    bn = {
        f"id{i}": {
            "stages.0.blocks.0.expand.bn.running_mean": torch.randn(4 + i, generator=g),
            "stages.0.blocks.0.expand.bn.running_var": torch.rand(4 + i, generator=g) + 0.1,
        }
        for i in range(3)
    }
    # given out of order: save_family sorts by latency and numbers the levels
    levels = [
        {"arch": {"k": 2}, "arch_id": "id2", "acc_top1": 70.0, "latency_ms": 6.0},
        {"arch": {"k": 0}, "arch_id": "id0", "acc_top1": 60.0, "latency_ms": 2.0},
        {"arch": {"k": 1}, "arch_id": "id1", "acc_top1": 65.0, "latency_ms": 4.0},
    ]
    processors = {p: levels for p in procs}
    path = save_family(
        tmp_path / "fam",
        space={"name": "ofa_mbv3", "width_mult": 0.5},
        processors=processors,
        bn=bn,
        devices={"cpu_1t": {"threads": 1}},
        checkpoint="ckpt.ckpt",
        weights_fingerprint="abc",
        bn_images=2000,
    )
    return path.parent, bn


def test_round_trip_keeps_levels_meta_and_exact_tensors(tmp_path):
    root, bn = write_family(tmp_path)
    fam = load_family(root)
    assert fam.space == {"name": "ofa_mbv3", "width_mult": 0.5}
    assert fam.meta["checkpoint"] == "ckpt.ckpt" and fam.meta["bn_images"] == 2000
    assert fam.devices["cpu_1t"] == {"threads": 1} and fam.devices["cpu_2t"] == {}
    levels = fam.levels("cpu_1t")
    assert [lv.level for lv in levels] == [1, 2, 3]
    assert [lv.arch_id for lv in levels] == ["id0", "id1", "id2"]
    assert levels[1] == Level(2, {"k": 1}, "id1", 65.0, 4.0)
    for aid, state in bn.items():
        got = fam.bn[aid]
        assert set(got) == set(state)
        assert all(torch.equal(got[k], v) for k, v in state.items())
    # the safetensors file holds plain tensors: no pickle header anywhere
    assert not (root / "bn" / "id0.safetensors").read_bytes().startswith(b"\x80")


def test_loading_one_processor_reads_only_its_bn_files(tmp_path):
    root, _ = write_family(tmp_path)
    fam = load_family(root, processors=["cpu_2t"])
    assert list(fam.processors) == ["cpu_2t"]


def test_missing_directory_and_json_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="family directory .*nowhere.* does not exist"):
        load_family(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="family.json is missing"):
        load_family(tmp_path / "empty")


def test_unknown_processor_names_the_valid_ones(tmp_path):
    root, _ = write_family(tmp_path)
    with pytest.raises(KeyError, match=r"'cuda'.*\['cpu_1t', 'cpu_2t'\]"):
        load_family(root, processors=["cuda"])
    fam = load_family(root)
    with pytest.raises(KeyError, match=r"unknown processor 'gpu'.*\['cpu_1t', 'cpu_2t'\]"):
        fam.levels("gpu")


def test_missing_bn_file_names_level_and_path(tmp_path):
    root, _ = write_family(tmp_path)
    (root / "bn" / "id1.safetensors").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"level 2 \(arch_id id1\) missing: .*id1.safetensors"
    ):
        load_family(root)


def edit(root, fn):
    meta = json.loads((root / "family.json").read_text())
    fn(meta)
    (root / "family.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda m: m.update(format=2), "format 2 is not supported"),
        (lambda m: m.pop("space"), "lacks the object 'space'"),
        (
            lambda m: m["processors"]["cpu_1t"]["levels"][0].pop("acc_top1"),
            r"levels\[0\] lacks \['acc_top1'\]",
        ),
        (lambda m: m["processors"]["cpu_1t"]["levels"].reverse(), "numbered"),
        (
            lambda m: m["processors"]["cpu_1t"]["levels"][2].update(latency_ms=1.0),
            "sorted by latency_ms ascending",
        ),
        (lambda m: m["processors"]["cpu_1t"]["levels"][0].update(latency_ms=-1), "must be > 0"),
        (lambda m: m["processors"]["cpu_1t"].pop("levels"), "no 'levels' list"),
    ],
)
def test_format_mismatch_is_a_clear_error(tmp_path, change, match):
    root, _ = write_family(tmp_path)
    edit(root, change)
    with pytest.raises(FamilyFormatError, match=match):
        load_family(root)


def test_not_json_is_a_format_error(tmp_path):
    root, _ = write_family(tmp_path)
    (root / "family.json").write_text("{not json")
    with pytest.raises(FamilyFormatError, match="not valid JSON"):
        load_family(root)


def test_save_refuses_a_level_without_bn_state(tmp_path):
    with pytest.raises(ValueError, match=r"no BN state given and no BN file in .* for \['x'\]"):
        save_family(
            tmp_path / "f",
            space={"name": "s"},
            processors={"cpu": [{"arch": {}, "arch_id": "x", "acc_top1": 1, "latency_ms": 1}]},
            bn={},
        )


def test_extra_fields_of_other_writers_are_accepted(tmp_path):
    # writers may add fields to a level (the family search records how each was measured)
    root, _ = write_family(tmp_path)
    edit(root, lambda m: m["processors"]["cpu_1t"]["levels"][0].update(flops_m=1.5))
    assert load_family(root).levels("cpu_1t")[0].acc_top1 == 60.0


def test_save_leaves_no_temporary_files(tmp_path):
    root, _ = write_family(tmp_path)
    assert not list(root.rglob("*.tmp"))
