"""Every command in README.md's fenced bash blocks is exercised here, on tiny budgets.

Each command is matched to a handler: train.py / search.py commands run (the bare
``python train.py`` as a subprocess, exactly as a user starts it, the others in-process through
``compose``) with small budgets appended; benchmark and module CLIs have their arguments parsed
by the script's own argparse parser, stopped right after parsing. A README command that no
handler knows fails ``test_every_readme_command_has_a_handler``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from hydra import compose, initialize_config_dir

from train import train

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
README = REPO / "README.md"

# Appended before the README's own overrides (so the README's values win): the default job's
# data and pipeline on a budget of seconds. Keys absent from the configs need '++'.
TRAIN_TINY = [
    "data.data_dir=null",  # the embedded subset even where HWNAS_CIFAR10_DIR is set
    "space.channels=4",
    "trainer.max_epochs=1",
    "++trainer.limit_train_batches=2",
    "trainer.enable_progress_bar=false",
    "evaluation.num_archs=6",
    "evaluation.recal_batches=1",
    "evaluation.val_batches=1",
    "data.batch_size=16",
    "data.eval_batch_size=64",
]
SEARCH_TINY = ["budget=60", "progress_bar=false", "logger=csv"]
# The OFA commands (train, family search) on the tiny elastic space of the family's own test, so
# the tiny trained supernet is the one the family search loads.
OFA_TRAIN_TINY = [
    "data.data_dir=null",
    "data.max_train_images=32",
    "data.batch_size=16",
    "data.eval_batch_size=64",
    "++trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "trainer.enable_progress_bar=false",
    "evaluation.num_archs=1",
    "evaluation.recal_batches=1",
    "evaluation.val_batches=1",
]


def readme_commands(text: str) -> list[str]:
    """Commands of the ```bash blocks: continuation lines joined, comments kept for shlex."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.strip().startswith("#"):
                commands.append(line.strip())
    return commands


def split(command: str) -> tuple[dict[str, str], list[str]]:
    """``(env, argv)`` of a command line: leading ``VAR=value`` words are its environment."""
    words = shlex.split(command, comments=True)
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    return env, words


def kind(argv: list[str]) -> str | None:
    """Which handler exercises ``argv``; None if none does."""
    if argv[:3] == ["pip", "install", "-e"]:
        return "pip"
    if argv[:1] == ["pytest"]:
        return "pytest"
    if argv[:2] == ["python", "train.py"]:
        return "train_multirun" if "-m" in argv else "train"
    if argv[:2] == ["python", "search.py"]:
        return "search"
    if argv[:2] == ["python", "-m"]:
        return "module_cli"
    if argv[:1] == ["python"] and len(argv) > 1 and argv[1].startswith("benchmarks/"):
        return "benchmark_cli"
    return None


COMMANDS = readme_commands(README.read_text())


def test_readme_is_short_and_has_commands():
    assert len(README.read_bytes()) < 14_500  # one section per part; figures live in docs/
    assert {"pip", "train", "pytest", "search"} <= {kind(split(c)[1]) for c in COMMANDS}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_readme_command_has_a_handler(command):
    assert kind(split(command)[1]) is not None, f"tests/test_readme.py cannot exercise {command!r}"


# ---------------------------------------------------------------------------- argparse CLIs
class _Parsed(Exception):
    """Raised right after a script's parser accepted its arguments, before any real work."""

    def __init__(self, namespace: argparse.Namespace) -> None:
        self.namespace = namespace


def parse_only(monkeypatch, argv: list[str], run) -> argparse.Namespace:
    """Run a CLI until its ``parse_args`` returns; argparse errors fail the test."""
    original = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        raise _Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
    monkeypatch.setattr(sys, "argv", argv)
    try:
        run()
    except _Parsed as parsed:
        return parsed.namespace
    except SystemExit as exc:
        pytest.fail(f"{argv}: argparse rejected the arguments (exit {exc.code})")
    pytest.fail(f"{argv}: the script never parsed its arguments")


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny_zip(tmp_path_factory) -> Path:
    """A CIFAR-10 ImageFolder zip (20 train + 10 test images per class, real embedded images)."""
    import zipfile

    from datamodules.embedded import EMBEDDED_ZIP, write_subset

    path = tmp_path_factory.mktemp("cifar") / "cifar10_jpeg.zip"
    write_subset(EMBEDDED_ZIP, path, n_train=20, n_test=10)
    assert zipfile.ZipFile(path).namelist()
    return path


def _train_cfg(out_dir: Path, overrides: list[str]):
    if any(o.startswith("experiment=ofa_mbv3") for o in overrides):
        from tests.search.test_dynamic_ofa_family import TINY_SPACE

        tiny = [*TINY_SPACE, *OFA_TRAIN_TINY]
    else:
        tiny = TRAIN_TINY
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            "train", overrides=["logger=csv", *tiny, *overrides, f"paths.output_dir={out_dir}"]
        )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """Run directory of a finished tiny train.py run (its last.ckpt stands in for ``<run>``)."""
    out = tmp_path_factory.mktemp("train_run")
    train(_train_cfg(out, []))
    return out


@pytest.fixture(scope="module")
def finished_ofa_run(tmp_path_factory) -> Path:
    """Run directory of a tiny ``experiment=ofa_mbv3_quick`` (stands in for ``outputs/ofa``)."""
    out = tmp_path_factory.mktemp("ofa_run")
    train(_train_cfg(out, ["experiment=ofa_mbv3_quick"]))
    return out


def _substitute(word: str, tmp_path: Path, request) -> str:
    """README placeholders -> real paths of this test session."""
    if "outputs/ofa_family" in word:  # parsed only, or the family search's own run directory
        return word.replace("outputs/ofa_family", str(tmp_path / "ofa_family"))
    if "outputs/ofa/" in word:
        return word.replace("outputs/ofa", str(request.getfixturevalue("finished_ofa_run")))
    if "/path/to/cifar10" in word:
        return word.replace("/path/to/cifar10", str(request.getfixturevalue("tiny_zip").parent))
    if "outputs/train/<run>" in word:
        run = request.getfixturevalue("finished_run")
        return word.replace("outputs/train/<run>", str(run))
    if "outputs/search/<run>" in word:
        return word.replace("outputs/search/<run>", str(tmp_path / "search_run"))
    return word


def _load_search_script():
    """search.py's ``search(cfg)``, loaded by path: ``import search`` is the package."""
    spec = importlib.util.spec_from_file_location("search_script", REPO / "search.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.search


def _search_cfg(out_dir: Path, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            "search", overrides=[*SEARCH_TINY, *overrides, f"paths.output_dir={out_dir}"]
        )


# ---------------------------------------------------------------------------- the commands
@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command, tmp_path, request, monkeypatch):
    env, argv = split(command)
    argv = [_substitute(w, tmp_path, request) for w in argv]
    what = kind(argv)
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    if what == "pip":  # installing is CI's first step (.ci/run); here: the extra it names exists
        extras = re.fullmatch(r"\.\[(.+)\]", argv[3]).group(1).split(",")
        project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
        assert set(extras) <= set(project["optional-dependencies"])
        assert any(d.startswith("pytest") for d in project["optional-dependencies"]["dev"])

    elif what == "pytest":  # this very run; the settings it relies on are in pyproject.toml
        settings = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]
        assert settings["ini_options"]["testpaths"] == ["tests"]

    elif what == "train" and argv == ["python", "train.py"]:
        _run_default_job_as_a_user_does(tmp_path)

    elif what == "train":
        overrides = [o for o in argv[2:] if not o.startswith("hydra.run.dir=")]
        if any(o.startswith("data.data_dir=") for o in overrides):
            overrides.append("data.valid_fraction=0.5")  # 20 train images per class
        summary = train(_train_cfg(tmp_path, overrides))
        assert json.loads((tmp_path / "summary.json").read_text())["n_archs"] == summary["n_archs"]
        cfg = _train_cfg(tmp_path, overrides)
        assert summary["n_evaluated_archs"] == cfg.evaluation.num_archs
        if any(o.startswith("data.data_dir=") for o in overrides):
            assert summary["data_source"].startswith("zip:")
        if any(o.startswith("ckpt_path=") for o in overrides):
            assert Path(summary["checkpoint_path"]).is_file()

    elif what == "train_multirun":  # a sweep of long jobs: every job's config composes
        sweeps = [o for o in argv[2:] if o != "-m"]
        jobs = [[]]
        for o in sweeps:
            key, values = o.split("=", 1)
            jobs = [[*j, f"{key}={v}"] for j in jobs for v in values.split(",")]
        assert len(jobs) > 1
        for job in jobs:
            cfg = _train_cfg(tmp_path, job)
            assert cfg.data.allow_embedded is False  # published figures never use the subset

    elif what == "search":
        overrides = [o for o in argv[2:] if not o.startswith("hydra.run.dir=")]
        run_dirs = [o.split("=", 1)[1] for o in argv[2:] if o.startswith("hydra.run.dir=")]
        out = Path(run_dirs[0]) if run_dirs else tmp_path
        if "evaluator=supernet" in overrides:  # the finished tiny run's supernet, cheaply scored
            overrides = [o for o in overrides if not o.startswith("space=")]
            overrides += ["space=nb201_cpu", "space.channels=4", "budget=8",
                          "evaluator.recal_batches=1", "evaluator.val_batches=1"]  # fmt: skip
        if "experiment=hadas_nb201_tx2" in overrides:  # the bi-level search on seconds
            from tests.test_search import HADAS_TINY

            overrides += HADAS_TINY
        if "experiment=ofa_mbv3_family" in overrides:  # on the tiny trained supernet
            from tests.search.test_dynamic_ofa_family import TINY

            overrides += [o for o in TINY if not o.startswith("data@evaluator")]
        search = _load_search_script()
        if "resume=true" in overrides:  # a search killed at 50 evaluations, resumed to 60
            search(_search_cfg(out, ["budget=50"]))
        summary = search(_search_cfg(out, overrides))
        if "experiment=hadas_nb201_tx2" in overrides:
            assert summary["outer"]["n_validated"] == 12 and summary["dynamic_vs_static"]
            return
        if "experiment=ofa_mbv3_family" in overrides:
            family = json.loads((out / "family" / "family.json").read_text())
            assert set(family["processors"]) == set(summary["processors"]) >= {"cpu_1t"}
            return
        assert summary["n_validated"] <= 60 and summary["front"]
        if "evaluator=supernet" in overrides:
            assert summary["evaluator"].startswith("validation:supernet")
        assert (out / "summary.json").is_file()

    elif what == "module_cli":
        module = argv[2]
        ns = parse_only(
            monkeypatch, [module, *argv[3:]], lambda: runpy.run_module(module, run_name="__main__")
        )
        assert vars(ns)

    elif what == "benchmark_cli":
        script = REPO / argv[1]
        assert script.is_file()
        if script.name == "collect_ranking.py":  # cheap: run it on a finished tiny run
            run = request.getfixturevalue("finished_run")
            monkeypatch.setattr(sys, "argv", [str(script), str(run)])
            runpy.run_path(str(script), run_name="__main__")
        else:
            run = lambda: runpy.run_path(str(script), run_name="__main__")  # noqa: E731
            assert vars(parse_only(monkeypatch, [str(script), *argv[2:]], run)) is not None

    else:
        pytest.fail(f"no handler for {command!r}")


NOISE = ("💡 Tip", "litlogger", "anonymous setting", "LeafSpec", "limit_val_batches=1.0")


def _run_default_job_as_a_user_does(tmp_path: Path) -> None:
    """``python train.py`` as a subprocess, W&B offline and not silenced: the console is quiet."""
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_SILENT", "HWNAS_CIFAR10_DIR")}
    env.update(WANDB_MODE="offline", WANDB_DIR=str(tmp_path))
    cmd = [sys.executable, "train.py", *TRAIN_TINY, f"hydra.run.dir={tmp_path}"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["data_source"].startswith("embedded:") and summary["n_archs"] == 6
    console = proc.stdout + proc.stderr
    assert "embedded real subset" in console
    for noise in NOISE:
        assert noise not in console, noise
