"""Evaluation archive: dedup, several processes writing at once, studies and checkpoints."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from search.archive import Archive, Evaluation, settings_key

SETTINGS = {"evaluator": "validation:toy", "keys": ["a", "b"]}


def _ev(arch: str, study: str = "s", value: float = 1.0, settings=SETTINGS) -> Evaluation:
    return Evaluation(arch, {"a": value, "b": None}, "validation:toy", settings, study)


def test_same_arch_and_settings_is_stored_once(tmp_path):
    archive = Archive(f"sqlite:///{tmp_path}/a.sqlite")
    first, new = archive.add(_ev("x", value=1.0))
    again, new_again = archive.add(_ev("x", study="other", value=2.0))
    assert new and not new_again
    assert again.metrics == {"a": 1.0, "b": None} and again.study == "s"  # the first one wins
    other_settings, new_other = archive.add(_ev("x", settings={**SETTINGS, "batch": 8}))
    assert new_other  # different settings: a different evaluation
    assert len(archive.evaluations()) == 2
    key = settings_key(SETTINGS)
    assert set(archive.lookup(["x", "y"], key)) == {"x"}
    assert [e.id for e in archive.evaluations(key=key)] == [first.id]


def _writer(url: str, worker: int, archs: list[str], out) -> None:
    archive = Archive(url, busy_timeout_s=30)
    new = [archive.add(_ev(a, study=f"w{worker}"))[1] for a in archs]
    out.put(sum(new))


def test_several_processes_write_one_archive(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.sqlite"
    Archive(url).close()  # create the schema once
    archs = [f"arch{i}" for i in range(60)]
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    # four writers with overlapping work, in different orders
    procs = [
        ctx.Process(target=_writer, args=(url, w, archs[::-1] if w % 2 else archs, out))
        for w in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sum(out.get() for _ in procs) == len(archs)  # each arch stored by exactly one writer
    stored = Archive(url).evaluations()
    assert sorted(e.arch for e in stored) == sorted(archs)


def test_studies_and_checkpoints(tmp_path):
    archive = Archive(f"sqlite:///{tmp_path}/a.sqlite")
    info = {"objectives": [{"metric": "a", "mode": "min", "device": None}], "seed": 0}
    assert archive.open_study("s", info, resume=False) is False
    with pytest.raises(ValueError, match="already exists.*resume=true"):
        archive.open_study("s", info, resume=False)
    assert archive.open_study("s", info, resume=True) is True
    with pytest.raises(ValueError, match="cannot resume study 's'"):
        archive.open_study("s", {**info, "seed": 1}, resume=True)
    assert archive.load_state("s") is None
    archive.save_state("s", 1, b"one")
    archive.save_state("s", 2, b"two")
    assert archive.load_state("s") == (2, b"two")
    with pytest.raises(KeyError, match="no study 'nope'.*studies: \\['s'\\]"):
        archive.study("nope")


def test_bad_urls_are_named():
    with pytest.raises(ValueError, match="SQLAlchemy URL.*'archive.sqlite'"):
        Archive("archive.sqlite")
