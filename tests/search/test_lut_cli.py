"""The LUT-building CLI (``python -m search.lut_cli``): builds, and a rerun resumes."""

from __future__ import annotations

import json

import pytest

from search.lut_cli import main


def test_cli_builds_and_resumes(tmp_path, capsys):
    argv = ["--channels", "4", "--cells", "1", "--n-archs", "3", "--calibrate", "1"]
    argv += ["--out", str(tmp_path / "cli.json")]
    main(argv)
    first = json.loads(capsys.readouterr().out)
    main(argv)  # rerun: everything is already timed and calibrated
    second = json.loads(capsys.readouterr().out)
    assert first["signatures"] == second["signatures"] > 0
    assert first["fixed_ms"] == second["fixed_ms"] is not None
    assert first["build_seconds"] == pytest.approx(second["build_seconds"], abs=1e-3)
