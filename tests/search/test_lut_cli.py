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


def test_cli_takes_any_space_builder_arguments(tmp_path, capsys):
    out = tmp_path / "ofa.json"
    argv = ["--space", "ofa_mbv3", "--space-arg", "width_mult=0.25", "--space-arg", "stages=1"]
    argv += ["--space-arg", "resolutions=[16]"]
    main([*argv, "--n-archs", "1", "--calibrate", "0", "--resolution", "16", "--out", str(out)])
    report = json.loads(capsys.readouterr().out)
    lut = json.loads(out.read_text())
    assert report["signatures"] > 0
    assert any("Conv2d" in sig and "16x16" in sig for sig in lut["ops"])  # the 16 px network
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        main(["--space", "ofa_mbv3", "--space-arg", "width_mult", "--out", str(out)])
    with pytest.raises(TypeError, match="channels"):  # nb201's flags on another space
        main(["--space", "ofa_mbv3", "--channels", "4", "--out", str(out)])
