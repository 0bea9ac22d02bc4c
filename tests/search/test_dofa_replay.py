"""The Dynamic-OFA replay CLI end to end on a tiny untrained stand-in family (real images)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from hardware.runtime import load_family
from hardware.runtime.replay import CSV_COLUMNS
from search.dynamic_ofa.replay import main

ROOT = Path(__file__).resolve().parents[2]
SPACE = """name: ofa_mbv3
width_mult: 0.25
stages: 3
widths: [24, 40, 80]
strides: [1, 2, 2]
acts: [relu, relu, h_swish]
se: [false, true, false]
"""


def load_workers_alive() -> list[int]:
    """Pids of running competing-load workers (their code multiplies ``a @ b``)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"a @ b" in cmd and b"ready" in cmd and state != "Z":
            pids.append(int(proc.name))
    return pids


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    (tmp / "space.yaml").write_text(SPACE)
    before = load_workers_alive()
    summary = main(
        [
            "--trace", str(ROOT / "conf/runtime/tiny.yaml"), "--out", str(tmp / "out"),
            "--space", str(tmp / "space.yaml"), "--levels", "3", "--candidates", "2",
            "--bn-batches", "1", "--acc-batches", "1",
        ]
    )  # fmt: skip
    return tmp / "out", summary, before


def test_cli_writes_both_replays_side_by_side(run):
    out, summary, _ = run
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["controller"]["requests"] == on_disk["fixed"]["requests"] == 45
    assert "stand-in" in on_disk["family"]["kind"] and "untrained" in on_disk["family"]["kind"]
    assert on_disk["family"]["supernet"] == "untrained (random init)"
    assert on_disk["inputs"].startswith("real CIFAR-10 test images")
    assert on_disk["machine"]["threads"] == 1 and on_disk["machine"]["loadavg"] is not None
    for who in ("controller", "fixed"):
        with (out / who / "requests.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 45
        assert [r["phase"] for r in rows[::15]] == ["loose", "tight", "medium"]
        violated = sum(int(r["violated"]) for r in rows)
        assert summary[who]["met_share"] == pytest.approx(1 - violated / 45)
    fixed = list(csv.DictReader((out / "fixed" / "requests.csv").open()))
    assert {int(r["level"]) for r in fixed} == {on_disk["fixed_level"]}
    # the stand-in family was saved in the artifact format and loads back
    fam = load_family(out / "family")
    assert len(fam.levels("cpu_1t")) == 3 and fam.meta["bn_images"] == 64
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
