"""search.py end to end: every search config composes and instantiates, summary.json, errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import hydra
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from search.algorithms import KnownElimination
from search.analytics import hypervolume
from search.benchmarks import NB201Table
from search.objectives import parse_objectives
from search.pareto import to_minimization
from search.tactics import Tactic

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
# `search` is the package; the script of the same name is loaded from its file
_spec = importlib.util.spec_from_file_location("search_script", REPO / "search.py")
search_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(search_script)

BASE = ["logger=csv", "progress_bar=false", "budget=60", "algorithm.pop_size=20"]
FAST = [*BASE, "tactic.batch_size=10", "tactic.initial_size=20"]


def _cfg(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("search", overrides=[f"paths.output_dir={tmp_path}", *overrides])


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.fixture(scope="module")
def source_archive(tmp_path_factory) -> str:
    """A finished search to warm-start from and to cluster (PopDB)."""
    out = tmp_path_factory.mktemp("source")
    search_script.search(_cfg(out, *BASE, "tactic=full", "study=src"))
    return f"sqlite:///{out}/archive.sqlite"


# A supernet trained by train.py on synthetic data (about 10 s), for evaluator=supernet.
TINY_SPACE = ["space=nb201", "space.channels=4", "space.cells_per_stage=1"]
SUPERNET = [*TINY_SPACE, "data@evaluator.datamodule=synthetic", "evaluator.recal_batches=2",
            "evaluator.val_batches=1"]  # fmt: skip


def _train_tiny(out: Path, *overrides: str) -> Path:
    from train import train

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "data=synthetic",
                "space.channels=4",
                "space.cells_per_stage=1",
                "logger=csv",
                "trainer.max_epochs=1",
                "trainer.enable_progress_bar=false",
                "evaluation.num_archs=0",
                f"paths.output_dir={out}",
                *overrides,
            ],
        )
    return Path(train(cfg)["checkpoint_path"])


@pytest.fixture(scope="module")
def supernet_ckpt(tmp_path_factory) -> Path:
    return _train_tiny(tmp_path_factory.mktemp("train"))


def _overrides(group: str, option: str, source: str, ckpt: Path | None = None) -> list[str]:
    extra = []
    if option == "supernet":
        extra = [f"evaluator.ckpt_path={ckpt}", *SUPERNET]
    if option == "warm_start":
        extra = [f"tactic.initial.url={source}", "tactic.initial.study=src"]
    if option == "popdb":
        extra = [f"tactic.url={source}", "tactic.study=src", "tactic.min_cluster_size=5",
                 "tactic.min_samples=3"]  # fmt: skip
    return [f"{group}={option}", *extra]


@pytest.mark.parametrize(
    ("group", "option"),
    [(g, o) for g in ("objectives", "evaluator", "algorithm", "tactic", "archive", "logger")
     for o in _options(g)] + [("experiment", o) for o in _options("experiment")
                              if "/tactic" in (CONF / "experiment" / f"{o}.yaml").read_text()],
)  # fmt: skip
def test_every_search_config_composes_and_instantiates(
    tmp_path, source_archive, supernet_ckpt, group, option
):
    cfg = _cfg(tmp_path, *_overrides(group, option, source_archive, supernet_ckpt))
    OmegaConf.resolve(cfg)
    objectives = parse_objectives(cfg.objectives)
    evaluator = hydra.utils.instantiate(cfg.evaluator)
    if group == "objectives" and option == "nb201_flops":
        evaluator = hydra.utils.instantiate(_cfg(tmp_path, "evaluator=proxy_table").evaluator)
    if group == "objectives" and option == "ofa_cpu":  # latency from hardware=cpu, plugged in
        cpu = hydra.utils.instantiate(_cfg(tmp_path, "hardware=cpu").hardware)
        evaluator = hydra.utils.instantiate(cfg.evaluator, devices={cpu.name: cpu})
    evaluator.check(objectives, [])
    algorithm = hydra.utils.instantiate(cfg.algorithm)
    built = algorithm(n_obj=len(objectives), eliminate_duplicates=KnownElimination())
    assert hasattr(built, "ask") and hasattr(built, "tell")
    assert isinstance(hydra.utils.instantiate(cfg.tactic, algorithm=algorithm), Tactic)
    hydra.utils.instantiate(cfg.archive).close()
    if group == "logger" and option == "wandb":
        assert cfg.logger.offline is True
    if group == "experiment":
        assert cfg.budget == 500 and cfg.algorithm.pop_size == 50
        assert cfg.objectives.latency.device in ("pixel3", "edgegpu")


def test_search_writes_a_summary_anyone_can_check_against_the_table(tmp_path):
    summary = search_script.search(_cfg(tmp_path, *FAST))
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary, default=float))
    assert summary["n_validated"] == 60 and summary["n_unique"] == 60
    for name in ("front.png", "hypervolume.png", "archive.sqlite", "config_resolved.yaml"):
        assert (tmp_path / name).is_file()
    # recompute the front's hypervolume fraction independently from the table
    table = NB201Table.bundled()
    archs = [e["arch"] for e in summary["front"]]
    acc, lat = table.values(archs, "acc_cifar10_test"), table.values(archs, "latency_ms_pixel3")
    assert [e["acc_top1"] for e in summary["front"]] == pytest.approx(acc)
    frame = table.frame.dropna(subset=["latency_ms_pixel3"])
    frame = frame[frame["acc_cifar10_test"] > frame["acc_cifar10_test"].min()]  # no 10% cells
    T = to_minimization(frame[["acc_cifar10_test", "latency_ms_pixel3"]].to_numpy(), ["max", "min"])
    T = T[
        [not np.any(np.less_equal(T, t).all(1) & np.less(T, t).any(1)) for t in T]
    ]  # brute-force front
    lo, hi = T.min(0), T.max(0)
    norm = lambda F: (F - lo) / (hi - lo)  # noqa: E731
    F = to_minimization(np.c_[acc, lat], ["max", "min"])
    expected = hypervolume(norm(F), [1.1, 1.1]) / hypervolume(norm(T), [1.1, 1.1])
    assert summary["hv_fraction"] == pytest.approx(expected)
    assert 0.5 < expected < 1


def test_wandb_gets_the_evaluations_table_and_plots_offline(tmp_path):
    summary = search_script.search(_cfg(tmp_path, *FAST, "logger=wandb", "budget=40"))
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    media = {p.name.split("_")[0] for p in runs[0].rglob("*.png")}
    assert media >= {"front", "hypervolume"}
    tables = list(runs[0].rglob("evaluations*.table.json"))
    assert len(tables) == 1
    rows = json.loads(tables[0].read_text())["data"]
    assert len(rows) == summary["n_validated"] == 40
    # predictor quality is tracked round by round (ConcurrentNAS: initial 20, then batches of 10)
    assert [h["n_validated"] for h in summary["predictor_history"]] == [30.0, 40.0]


def test_a_hardware_device_plugs_in_as_the_latency_source(tmp_path):
    overrides = ["hardware=table", "hardware.device=edgegpu", "hardware.name=tx2",
                 "objectives.latency.device=tx2", "budget=40"]  # fmt: skip
    summary = search_script.search(_cfg(tmp_path, *FAST, *overrides))
    table = NB201Table.bundled()
    archs = [e["arch"] for e in summary["front"]]
    measured = [e["latency_ms_tx2"] for e in summary["front"]]
    assert measured == pytest.approx(table.values(archs, "latency_ms_edgegpu"))
    assert summary["evaluator"] == "validation:nb201_table+device:tx2"
    assert {e["evaluator"] for e in summary["front"]} == {summary["evaluator"]}
    with pytest.raises(KeyError, match="unknown device 'tx9'.*'tx2'"):
        search_script.search(
            _cfg(tmp_path / "b", *FAST, *overrides, "objectives.latency.device=tx9")
        )


def test_the_papers_concurrent_nas_composes_and_runs_a_tiny_search(tmp_path):
    cfg = _cfg(tmp_path, *BASE, "tactic=concurrent_paper", "experiment=nb201_pixel3_concurrent",
               "budget=70", "algorithm.pop_size=20")  # fmt: skip
    paper = {"default_predictor": "ridge", "neighbourhood": 0, "believer": True,
             "anchor": False, "target": "standard", "batch_size": 50}  # fmt: skip
    assert {k: cfg.tactic[k] for k in paper} == paper and cfg.tactic.inner_generations > 200
    summary = search_script.search(cfg)
    assert summary["n_validated"] == summary["n_unique"] == 70  # 50 random, then 20 predicted
    # the ridge predictors chose the second batch (scored on it before it was validated)
    assert [h["n_validated"] for h in summary["predictor_history"]] == [70.0]
    assert summary["hypervolume"] > 0


def test_table_accuracy_with_a_device_on_another_network_size_is_refused(tmp_path):
    overrides = ["space=nb201_cpu", "hardware=cpu", "objectives.latency.device=cpu"]
    with pytest.raises(ValueError, match=r"acc_top1 from the NAS-Bench-201 table at channels=16, "
                       r"cells_per_stage=5; latency_ms_cpu from device 'cpu' at channels=16, "
                       r"cells_per_stage=1"):  # fmt: skip
        search_script.search(_cfg(tmp_path, *FAST, *overrides))


def test_resume_true_with_nothing_to_resume_names_the_study_and_archive(tmp_path):
    with pytest.raises(ValueError, match=r"resume=true but archive sqlite:///.*archive.sqlite "
                       r"has no study 'search' to resume"):  # fmt: skip
        search_script.search(_cfg(tmp_path, *FAST, "resume=true"))
    summary = search_script.search(_cfg(tmp_path, *FAST, "budget=30", "resume=auto"))
    assert summary["n_validated"] == 30


def test_resume_through_the_entry_point(tmp_path):
    first = search_script.search(_cfg(tmp_path, *FAST, "budget=30"))
    with pytest.raises(ValueError, match="already exists.*resume=true"):
        search_script.search(_cfg(tmp_path, *FAST, "budget=30"))
    resumed = search_script.search(_cfg(tmp_path, *FAST, "budget=30", "resume=true"))
    assert resumed["front"] == first["front"] and resumed["n_validated"] == 30


@pytest.mark.parametrize(
    ("override", "error", "match"),
    [
        ("objectives.latency.device=tx9", KeyError, "unknown device 'tx9'.*'edgegpu'"),
        ("objectives.accuracy.metric=acc", KeyError, "unknown metric 'acc'.*'acc_top1'"),
        ("+constraints.fast={metric:latency_ms,device:pixel3,op:'<=',value:0.0001}",
         ValueError, "infeasible"),
    ],
)  # fmt: skip
def test_bad_config_values_get_clear_errors(tmp_path, override, error, match):
    with pytest.raises(error, match=match):
        search_script.search(_cfg(tmp_path, *FAST, override))


def test_train_then_search_with_the_supernet_as_accuracy_source(tmp_path, supernet_ckpt):
    """train.py -> search.py: accuracy from the shared weights, latency from the table."""
    from search.evaluators import SupernetEvaluator
    from search.evaluators.subnet import SubnetEvaluator

    overrides = [*BASE, "budget=12", "algorithm.pop_size=6", "tactic=full", *SUPERNET,
                 "evaluator=supernet", f"evaluator.ckpt_path={supernet_ckpt}"]  # fmt: skip
    cfg = _cfg(tmp_path, *overrides)
    summary = search_script.search(cfg)
    assert summary["n_validated"] == 12 and summary["evaluator"].startswith("validation:supernet")
    # brute force: each front member re-scored from the checkpoint, latency from the table
    space = hydra.utils.instantiate(cfg.space)
    dm = hydra.utils.instantiate(cfg.evaluator.datamodule)
    direct = SupernetEvaluator(supernet_ckpt, space, dm, recal_batches=2, val_batches=1)
    table = NB201Table.bundled()
    for e in summary["front"]:
        acc = SubnetEvaluator.evaluate_one(direct.subnets, direct.net, e["arch"])["acc_top1"]
        assert e["acc_top1"] == pytest.approx(acc)
        assert e["latency_ms_pixel3"] == pytest.approx(
            table.values([e["arch"]], "latency_ms_pixel3")[0]
        )

    # the archive keys supernet scores by the weights: another checkpoint shares nothing
    other = _train_tiny(tmp_path / "other", "seed=1")
    again = _cfg(tmp_path / "again", *overrides, f"evaluator.ckpt_path={other}",
                 f"archive.url=sqlite:///{tmp_path}/archive.sqlite", "study=second")  # fmt: skip
    other_summary = search_script.search(again)
    assert other_summary["n_unique"] == other_summary["n_validated"] == 12  # nothing served
    same = _cfg(tmp_path / "same", *overrides, f"archive.url=sqlite:///{tmp_path}/archive.sqlite",
                "study=third")  # fmt: skip
    same_summary = search_script.search(same)  # the same seed proposes the first study's archs
    assert same_summary["n_unique"] - same_summary["n_validated"] >= 6  # served, not re-scored


def test_supernet_evaluator_refuses_a_checkpoint_of_another_shape(tmp_path, supernet_ckpt):
    from datamodules.synthetic import SyntheticDataModule
    from search.evaluators import SupernetEvaluator
    from search.spaces import create_space

    with pytest.raises(ValueError, match="another shape than the space builds"):
        SupernetEvaluator(supernet_ckpt, create_space("nb201", channels=8, cells_per_stage=1),
                          SyntheticDataModule())  # fmt: skip
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SupernetEvaluator(tmp_path / "none.ckpt", create_space("nb201"), SyntheticDataModule())


def test_hadas_experiment_runs_through_search_py(tmp_path):
    """experiment=hadas_nb201_tx2 on a budget of seconds: both fronts, the plot, summary.json,
    and a resumed run that trains nothing again gives the same fronts."""
    tiny = ["experiment=hadas_nb201_tx2", *HADAS_TINY]
    summary = search_script.search(_cfg(tmp_path, *tiny))
    files = ("summary.json", "static_front.json", "dynamic_front.json", "static_vs_dynamic.png")
    assert all((tmp_path / name).is_file() for name in files)
    assert summary["outer"]["n_validated"] == 12 and len(summary["backbones"]) == 1
    again = search_script.search(_cfg(tmp_path, *tiny, "resume=auto"))
    assert again["dynamic_vs_static"] == summary["dynamic_vs_static"]


HADAS_TINY = ["hadas.outer_budget=12", "hadas.max_backbones=1",
            "hadas.inner_budget=6", "hadas.pipeline.backbone_epochs=1",
            "hadas.pipeline.exit_epochs=1", "hadas.pipeline.datamodule.max_train_images=200",
            "hadas.pipeline.space.channels=4"]  # fmt: skip


def test_search_py_on_the_elastic_space_with_supernet_accuracy_and_cpu_latency(tmp_path):
    """space=ofa_mbv3: accuracy from an OFA supernet checkpoint, latency measured on this CPU."""
    from tests.search.test_dynamic_ofa_family import QUICK, TINY_SPACE, _untrained_checkpoint

    base = [*BASE, "budget=6", "algorithm.pop_size=4", "tactic=full", "space=ofa_mbv3",
            *TINY_SPACE, "objectives=ofa_cpu", "hardware=cpu", "hardware.energy=false",
            *(f"hardware.{q}" for q in QUICK), "evaluator=supernet",
            "data@evaluator.datamodule=synthetic", "evaluator.recal_batches=1",
            "evaluator.val_batches=1"]  # fmt: skip
    ckpt = _untrained_checkpoint(_cfg(tmp_path, *base, "evaluator.ckpt_path=x"), tmp_path / "c")
    summary = search_script.search(_cfg(tmp_path, *base, f"evaluator.ckpt_path={ckpt}"))
    assert summary["n_validated"] == 6 and summary["front"]
    space = hydra.utils.instantiate(_cfg(tmp_path, *base, "evaluator.ckpt_path=x").space)
    for e in summary["front"]:
        arch = space.parse(e["arch"])  # the archive holds the space's canonical JSON
        assert e["arch"] == space.serialize(arch)
        assert 0.0 <= e["acc_top1"] <= 100.0 and e["latency_ms_cpu"] > 0
