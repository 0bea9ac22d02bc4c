"""The Dynamic-OFA replay CLI end to end on a tiny untrained family, and its stand-in family."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hardware.runtime import load_family, save_family
from hardware.runtime.replay import CSV_COLUMNS
from search.dynamic_ofa.replay import main, stand_in_family
from search.evaluators.subnet import recalibrate_bn
from search.spaces import create_space

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(width_mult=0.25, stages=3, widths=[24, 40, 80], strides=[1, 2, 2],
            acts=["relu", "relu", "h_swish"], se=[False, True, False])  # fmt: skip
SPACE_YAML = "name: ofa_mbv3\n" + "\n".join(f"{k}: {json.dumps(v)}" for k, v in TINY.items())


def load_workers_alive() -> list[int]:
    """Pids of running competing-load workers (their code multiplies ``a @ b``)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[:1]
        except OSError:
            continue
        if b"a @ b" in cmd and b"ready" in cmd and state != ["Z"]:
            pids.append(int(proc.name))
    return pids


def tiny_family(root: Path) -> Path:
    """Three members of the tiny space, BN stats recalibrated on random images."""
    space = create_space("ofa_mbv3", **TINY)
    net = space.build_supernet()
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(8, 3, 32, 32, generator=g) for _ in range(2)]
    archs = [space.min_arch(), *space.sample_unique(np.random.default_rng(0), 1), space.max_arch()]
    rows, bn = [], {}
    for i, arch in enumerate(archs):
        sub = net.extract_subnet(arch)
        recalibrate_bn(sub, batches)
        aid = space.arch_id(arch)
        bn[aid] = {k: v for k, v in sub.state_dict().items() if k.endswith(("_mean", "_var"))}
        # profiled latencies and accuracies of the fixture: a ladder by construction
        rows.append({"arch": arch, "arch_id": aid, "acc_top1": 10.0 + i, "latency_ms": 2.0 + i})
    save_family(
        root, space={"name": space.name, **space.kwargs}, processors={"cpu_1t": rows}, bn=bn
    )
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    before = load_workers_alive()
    summary = main(
        [
            "--family", str(tiny_family(tmp / "family")), "--trace",
            str(ROOT / "conf/runtime/tiny.yaml"), "--out", str(tmp / "out"), "--inputs",
            "random", "--probe-requests", "5",
        ]
    )  # fmt: skip
    return tmp / "out", summary, before


def test_cli_writes_both_replays_side_by_side(run):
    out, summary, _ = run
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["controller"]["requests"] == on_disk["fixed"]["requests"] == 45
    assert on_disk["family"]["supernet"] == "untrained (random init)"
    assert on_disk["family"]["levels"] == 3
    assert on_disk["inputs"].startswith("random N(0,1) inputs")
    assert on_disk["machine"]["threads"] == 1 and on_disk["machine"]["loadavg"] is not None
    assert set(on_disk["probe_ms_by_load_workers"]) == {"0", "1"}  # the tiny trace loads 1
    for who in ("controller", "fixed"):
        with (out / who / "requests.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 45
        assert [r["phase"] for r in rows[::15]] == ["loose", "tight", "medium"]
        violated = sum(int(r["violated"]) for r in rows)
        assert summary[who]["met_share"] == pytest.approx(1 - violated / 45)
        served = [10.0 + int(r["level"]) - 1 for r in rows]  # the fixture's accuracies
        assert summary[who]["mean_acc_top1"] == pytest.approx(sum(served) / 45)
    fixed = list(csv.DictReader((out / "fixed" / "requests.csv").open()))
    assert {int(r["level"]) for r in fixed} == {on_disk["fixed_level"]}
    switches = list(csv.DictReader((out / "controller" / "switches.csv").open()))
    assert {s["reason"] for s in switches} <= {"target", "down", "up"}  # init is not replayed
    assert len(switches) == summary["controller"]["switches"]
    assert (out / "replay.png").stat().st_size > 10_000


def test_cli_logged_to_wandb_offline(run):
    out, summary, _ = run
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and summary["wandb_dir"].startswith(str(runs[0]))


def test_cli_leaves_no_load_worker_running(run):
    _, _, before = run
    assert set(load_workers_alive()) <= set(before)


def test_cli_names_a_missing_family(tmp_path):
    with pytest.raises(FileNotFoundError, match="family directory"):
        main(["--family", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--no-wandb"])


class TinyData:
    """The two loaders the stand-in family reads, on random images with random labels."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(1)
        self.x = [torch.randn(16, 3, 32, 32, generator=g) for _ in range(2)]
        self.y = [torch.randint(0, 10, (16,), generator=g) for _ in range(2)]

    def recalibration_dataloader(self, seed: int = 0):
        return list(zip(self.x, self.y, strict=True))

    def val_dataloader(self):
        return list(zip(self.x, self.y, strict=True))


def test_stand_in_family_is_an_accuracy_latency_chain_in_the_artifact_format(tmp_path):
    space = create_space("ofa_mbv3", **TINY)
    net = space.build_supernet().eval()
    entry = {"name": space.name, **space.kwargs}
    root = stand_in_family(
        net, space, entry, tmp_path / "fam", "cpu_1t", TinyData(), levels=3, candidates=4,
        bn_batches=1, val_batches=2,
    )  # fmt: skip
    fam = load_family(root)
    levels = fam.levels("cpu_1t")
    accs, lats = [lv.acc_top1 for lv in levels], [lv.latency_ms for lv in levels]
    assert 1 <= len(levels) <= 3 and accs == sorted(set(accs)) and lats == sorted(lats)
    assert "untrained" in fam.meta["kind"] and fam.meta["bn_images"] == 16
    assert fam.space == entry
    spread = stand_in_family(
        net, space, entry, tmp_path / "spread", "cpu_1t", TinyData(), levels=3, candidates=4,
        pool=3, bn_batches=1, val_batches=1, chain=False,
    )  # fmt: skip
    assert len(load_family(spread).levels("cpu_1t")) == 3


@pytest.mark.slow
def test_cli_builds_a_stand_in_family_on_real_images(tmp_path):
    # the path without --family: CIFAR-10 (embedded subset), Lightning's import (~6 s) included
    (tmp_path / "space.yaml").write_text(SPACE_YAML)
    summary = main(
        [
            "--trace", str(ROOT / "conf/runtime/tiny.yaml"), "--out", str(tmp_path / "out"),
            "--space", str(tmp_path / "space.yaml"), "--levels", "3", "--candidates", "2",
            "--bn-batches", "1", "--acc-batches", "1", "--probe-requests", "5", "--no-wandb",
        ]
    )  # fmt: skip
    assert "stand-in" in summary["family"]["kind"] and "untrained" in summary["family"]["kind"]
    assert summary["inputs"].startswith("real CIFAR-10 test images")
    assert summary["controller"]["requests"] == 45
