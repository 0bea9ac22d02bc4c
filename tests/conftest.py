"""Test-wide settings: one torch thread (parallel jobs collapse 2-thread torch), offline W&B."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HYDRA_FULL_ERROR", "1")
torch.set_num_threads(1)

pytest_plugins = ["pytester"]  # tests/datamodules/test_shared_data.py runs pytest on a tiny file

REPO = Path(__file__).resolve().parents[1]
# Real data for tests that need it: CI points HWNAS_SHARED_DATA at ../shared/data.
SHARED_DATA = Path(os.environ.get("HWNAS_SHARED_DATA", REPO.parent / "shared" / "data"))


def in_ci() -> bool:
    """True when the environment variable ``CI`` is set to a true value (``.ci/run`` sets it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def require_shared_data(folder: Path) -> Path:
    """``folder`` if it exists; otherwise skip the test, or fail it in CI (where it must exist)."""
    if folder.is_dir():
        return folder
    reason = f"real data folder {folder} missing: set HWNAS_SHARED_DATA"
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so the real-data tests must run)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _wandb_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (NAS-Bench-201 table, CIFAR-10 JPEG zip).

    Missing, the tests that need it skip on a user's machine and fail in CI (``CI=true``).
    """
    return require_shared_data(SHARED_DATA)
