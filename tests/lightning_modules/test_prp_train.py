"""train.py with model=prp end to end: held-out ranking, final selection, predicted front."""

from __future__ import annotations

import json

import torch

from search.evaluators.supernet import load_supernet_weights
from search.spaces import create_space
from tests.test_train import _cfg
from train import train

PRP = [
    "model=prp",
    "model.fair_epochs=1",
    "trainer.max_epochs=3",
    "model.n_sampled=12",
    "model.top_n=4",
    "model.ref_samples=12",
    "model.prune_start_epoch=0",
    "model.prune_every=1",
    "model.prune_select=4",
    "evaluation.num_archs=16",
]


def test_prp_train_ranks_held_out_archs_and_writes_its_selection(tmp_path):
    summary = train(_cfg(tmp_path, *PRP))
    # its checkpoint is plain data: the supernet evaluator loads it with weights_only=True
    ckpt = torch.load(summary["checkpoint_path"], map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["objectives"][1]["device"] == "edgegpu"
    net = create_space("nb201", channels=4, cells_per_stage=1).build_supernet()
    load_supernet_weights(net, summary["checkpoint_path"])
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["kendall_tau_pareto_score"] == summary["kendall_tau_pareto_score"]
    assert -1 <= summary["kendall_tau_pareto_score"] <= 1
    assert len(summary["prune_events"]) == 2
    alive = summary["alive_ops"]
    assert all(set(ops) <= set(alive[edge]) for edge, ops in summary["final_selection"].items())
    front = summary["predicted_front"]
    assert front and all(
        all(f["arch"][e] in summary["final_selection"][e] for e in alive) for f in front
    )
    # the front is non-dominated in (score up, latency down)
    for a in front:
        assert not any(
            b["score"] >= a["score"]
            and b["latency_ms_edgegpu"] <= a["latency_ms_edgegpu"]
            and (b["score"], b["latency_ms_edgegpu"]) != (a["score"], a["latency_ms_edgegpu"])
            for b in front
        )


def test_a_run_without_alpha_steps_writes_an_undefined_alpha_tau_as_null(tmp_path):
    # step 1 alone: every alpha is still zero, the score is constant and its tau-b undefined
    summary = train(_cfg(tmp_path, *PRP[:2], "trainer.max_epochs=1", *PRP[3:]))
    text = (tmp_path / "summary.json").read_text()
    assert "NaN" not in text  # strict JSON: jq, JavaScript and pandas read it
    on_disk = json.loads(text)
    assert summary["kendall_tau_pareto_score"] != summary["kendall_tau_pareto_score"]  # NaN
    assert on_disk["kendall_tau_pareto_score"] is None
    assert -1 <= on_disk["kendall_tau_pareto"] <= 1  # defined figures are kept as they are
