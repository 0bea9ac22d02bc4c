"""Search checkpoints are data: replayed on resume, tampered rows refused, resume modes."""

from __future__ import annotations

import functools
import json
import logging
import pathlib
import pickle

import pytest

from search.algorithms import nsga2
from search.archive import Archive
from search.checkpoint import SearchState, StateError
from search.runner import run_search
from search.spaces import create_space
from search.tactics import FullSearch
from tests.search.test_tactics import OBJECTIVES, CountingTable, Crash


@pytest.fixture(scope="module")
def space():
    return create_space("nb201")


def _search(space, url, evaluator=None, **kw):
    tactic = FullSearch(functools.partial(nsga2, pop_size=10))
    kw = {"budget": 30, "archive": url, "study": "s", "seed": 4, **kw}
    return run_search(space, OBJECTIVES, evaluator or CountingTable(), tactic=tactic, **kw)


class _Payload:
    """A pickle whose loading creates ``marker`` (what a hostile state row would do)."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_the_state_row_is_json_data(space, tmp_path):
    url = f"sqlite:///{tmp_path}/a.sqlite"
    _search(space, url)
    step, blob = Archive(url).load_state("s")
    data = json.loads(blob)
    assert data == {"format": "hwnas.search_state", "version": 1, "step": step,
                    "n_validated": 30, "seed": 4, "settings_key": data["settings_key"],
                    "tactic": "FullSearch"}  # fmt: skip
    assert SearchState.from_json(blob, "s", url).step == step == 3


def test_a_pickled_state_row_is_refused_and_never_loaded(space, tmp_path):
    url = f"sqlite:///{tmp_path}/a.sqlite"
    with pytest.raises(Crash):
        _search(space, url, CountingTable(crash_after=25))
    marker = tmp_path / "marker"
    Archive(url).save_state("s", 2, pickle.dumps(_Payload(marker)))
    with pytest.raises(StateError, match=r"cannot resume study 's' in archive sqlite:///.*"
                       r"is not JSON \(a pickle.*expected UTF-8 JSON with "
                       r"format='hwnas.search_state'"):  # fmt: skip
        _search(space, url, resume=True)
    assert not marker.exists()
    # the payload is live: unpickling it is what would have created the marker
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_Payload(live)))
    assert live.exists()


@pytest.mark.parametrize(
    "payload",
    [b'{"format": "hwnas.search_state", "version": 2}', b"[1, 2]",
     b'{"format": "hwnas.search_state", "version": 1, "step": true, "n_validated": 1, '
     b'"seed": 0, "settings_key": "k", "tactic": "t"}'],
)  # fmt: skip
def test_malformed_state_json_is_refused(payload):
    with pytest.raises(StateError, match="cannot resume study 'x' in archive u"):
        SearchState.from_json(payload, "x", "u")


def test_a_diverged_replay_warns_and_keeps_the_budget(space, tmp_path):
    url = f"sqlite:///{tmp_path}/a.sqlite"
    with pytest.raises(Crash):  # checkpoint after step 2 (20 validated), killed in step 3
        _search(space, url, CountingTable(crash_after=25))
    step, blob = Archive(url).load_state("s")
    state = json.loads(blob)
    Archive(url).save_state("s", step, json.dumps({**state, "n_validated": 19}).encode())
    again = CountingTable()
    with pytest.warns(RuntimeWarning, match="replay diverged from the checkpoint"):
        result = _search(space, url, again, resume=True)
    assert result.n_validated == 30 and sum(again.calls.values()) == 5  # 25 paid before
    assert len(Archive(url).evaluations(study="s")) == 30


def test_resume_true_needs_a_study_and_auto_starts_or_resumes(space, tmp_path, caplog):
    url = f"sqlite:///{tmp_path}/a.sqlite"
    with pytest.raises(ValueError, match=r"resume=true but archive sqlite:///.*a.sqlite has no "
                       r"study 's' to resume"):  # fmt: skip
        _search(space, url, resume=True)
    with caplog.at_level(logging.INFO, logger="search.runner"):
        first = _search(space, url, resume="auto")
    assert "resume=auto: nothing to resume, starting study 's'" in caplog.text
    caplog.clear()
    again = CountingTable()
    with caplog.at_level(logging.INFO, logger="search.runner"):
        resumed = _search(space, url, again, resume="auto")
    assert "resume=auto: resuming study 's'" in caplog.text
    assert sum(again.calls.values()) == 0 and resumed.n_validated == first.n_validated == 30
    assert [e.arch for e in resumed.evaluations] == [e.arch for e in first.evaluations]
    with pytest.raises(ValueError, match="resume must be true, false or auto, got 'yes'"):
        _search(space, url, resume="yes")
