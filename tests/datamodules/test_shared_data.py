"""Tests needing the real data folder skip on a user's machine and fail in CI."""

from __future__ import annotations

import pytest

TINY_TEST = """
import pytest
from pathlib import Path
from tests.conftest import require_shared_data


@pytest.fixture
def shared_data():
    return require_shared_data(Path({folder!r}))


def test_needs_real_data(shared_data):
    assert shared_data.is_dir()
"""


@pytest.mark.parametrize(
    ("ci", "outcome"),
    [(None, {"skipped": 1}), ("false", {"skipped": 1}), ("true", {"errors": 1})],
)
def test_missing_real_data_skips_outside_ci_and_fails_in_ci(pytester, monkeypatch, ci, outcome):
    missing = pytester.path / "no_shared_data"
    pytester.makepyfile(test_tiny=TINY_TEST.format(folder=str(missing)))
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")  # in-process: fast
    result.assert_outcomes(**outcome)
    result.stdout.fnmatch_lines([f"*real data folder {missing} missing: set HWNAS_SHARED_DATA*"])


def test_present_real_data_runs(pytester, monkeypatch):
    folder = pytester.mkdir("shared_data")
    pytester.makepyfile(test_tiny=TINY_TEST.format(folder=str(folder)))
    monkeypatch.setenv("CI", "true")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
