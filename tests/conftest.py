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

REPO = Path(__file__).resolve().parents[1]
# Real data for tests that need it: CI points HWNAS_SHARED_DATA at ../shared/data.
SHARED_DATA = Path(os.environ.get("HWNAS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _wandb_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (NAS-Bench-201 table, CIFAR-10 JPEG zip); fails if it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real data folder {SHARED_DATA} missing: set HWNAS_SHARED_DATA")
    return SHARED_DATA
