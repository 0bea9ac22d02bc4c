"""search.py experiment=ofa_mbv3_family end to end: a tiny family from an untrained tiny supernet
on synthetic data, its artifact, and a rerun that resumes without evaluating anything again."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from hardware.runtime.family import load_bn

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
_spec = importlib.util.spec_from_file_location("search_script", REPO / "search.py")
search_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(search_script)

TINY_SPACE = ["space.width_mult=0.25", "space.widths=[16,24]", "space.strides=[1,2]",
              "space.acts=[relu,h_swish]", "space.se=[false,true]", "space.resolutions=[24,32]",
              "space.depths=[1,2]"]  # fmt: skip
# a handful of timed calls per network: the test checks the plumbing, not the figures
QUICK = ["warmup=0", "min_repeats=2", "max_repeats=4", "round_size=2", "min_time_s=0",
         "max_seconds=0.01", "stable_rounds=1", "rel_tol=0.5"]  # fmt: skip


class ParamCountDevice:
    """Deterministic stand-in for the search-time timer: latency grows with the parameters, so
    which draws Alg. 1 accepts does not depend on how busy the machine is."""

    def __init__(self, name: str, **_: object) -> None:
        self.name = name

    def settings(self) -> dict:
        return {"device": self.name, "kind": "param_count"}

    def metrics(self, arch, model) -> dict:
        n = sum(p.numel() for p in model.parameters())
        return {"latency_ms": n / 1e4, "settings": self.settings()}


FAKE_PREDICT = [f"dynamic_ofa.processors.{p}.predict._target_={__name__}.ParamCountDevice"
                for p in ("cpu_1t", "cpu_2t")]  # fmt: skip
TINY = [*TINY_SPACE, *FAKE_PREDICT, "data@evaluator.datamodule=synthetic",
        "evaluator.recal_batches=1", "evaluator.val_batches=1", "dynamic_ofa.bn_images=64",
        "dynamic_ofa.alg1.levels=2",
        "dynamic_ofa.alg1.itr_n=3", "dynamic_ofa.alg1.itr_max=8", "dynamic_ofa.refine.budget=4",
        "dynamic_ofa.refine.pop_size=4", "dynamic_ofa.selection.n_levels=3",
        *(f"++dynamic_ofa.processors.{p}.{part}.{q}" for p in ("cpu_1t", "cpu_2t")
          for part in ("remeasure",) for q in QUICK)]  # fmt: skip


def _cfg(out: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            "search",
            overrides=["experiment=ofa_mbv3_family", f"paths.output_dir={out}", *TINY, *overrides],
        )


def _untrained_checkpoint(cfg, path: Path) -> Path:
    """A train.py-style checkpoint of a freshly initialised supernet of the configured space."""
    net = instantiate(cfg.space).build_supernet()
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path)
    return path


def test_search_py_writes_the_family_artifact_and_a_rerun_evaluates_nothing_again(tmp_path):
    out = tmp_path / "run"
    ckpt = _untrained_checkpoint(_cfg(out, "evaluator.ckpt_path=x"), tmp_path / "last.ckpt")
    cfg = _cfg(out, f"evaluator.ckpt_path={ckpt}")
    summary = search_script.search(cfg)

    doc = json.loads((out / "family" / "family.json").read_text())
    assert doc["checkpoint"] == str(ckpt) and doc["bn_images"] == 64
    assert doc["space"]["name"] == "ofa_mbv3" and "_target_" not in doc["space"]
    expected = {"cpu_1t", "cpu_2t"} | ({"cuda"} if torch.cuda.is_available() else set())
    assert set(doc["processors"]) == expected == set(summary["processors"])
    if not torch.cuda.is_available():
        assert "cuda" in summary["skipped_processors"]
    space = instantiate(cfg.space)
    for proc, entry in doc["processors"].items():
        levels = entry["levels"]
        assert 1 <= len(levels) <= 3
        assert [lv["level"] for lv in levels] == list(range(1, len(levels) + 1))
        lat = [lv["latency_ms"] for lv in levels]
        acc = [lv["acc_top1"] for lv in levels]
        assert lat == sorted(lat) and acc == sorted(acc)  # a front: slower is more accurate
        assert entry["device"]["threads"] == int(proc[4])
        for lv in levels:
            assert lv["arch_id"] == space.arch_id(lv["arch"])
            assert lv["latency_source"] == "measured"
            assert all(
                k.endswith(("running_mean", "running_var"))
                for k in load_bn(out / "family", lv["arch_id"])
            )
        s = summary["processors"][proc]
        assert s["n_parents"] >= 1 and s["n_evaluated"] >= s["refine"]["seeds"]
        assert s["computed"]["latency_predicted"] > 0
    assert summary["computed"]["accuracy"] > 0 and summary["computed"]["final"] > 0
    assert summary["data"]["final_val_images"] == 64 and summary["data"]["bn_images"] == 64
    assert (out / "family_front.png").stat().st_size > 0
    assert list((out / "wandb").glob("offline-run-*"))  # W&B offline run with the plot and table

    again = search_script.search(_cfg(out, f"evaluator.ckpt_path={ckpt}"))
    assert again["computed"] == {"accuracy": 0, "final": 0}
    for proc, s in again["processors"].items():
        assert s["computed"] == {"latency_predicted": 0, "latency_remeasured": 0}
        assert s["levels"] == summary["processors"][proc]["levels"]
        assert s["n_evaluated"] == summary["processors"][proc]["n_evaluated"]
    assert json.loads((out / "family" / "family.json").read_text()) == doc


def test_a_missing_checkpoint_is_named(tmp_path):
    cfg = _cfg(tmp_path, f"evaluator.ckpt_path={tmp_path / 'none.ckpt'}")
    with pytest.raises(FileNotFoundError, match="none.ckpt.* does not exist"):
        search_script.search(cfg)
