"""Dynamic-OFA Alg. 1 on deterministic toys, and the level rule on hand-made fronts."""

from __future__ import annotations

import itertools

import pytest

from search.dynamic_ofa import SearchExhausted, random_search, select_levels
from search.dynamic_ofa.levels import front_indices


def _stream(archs):
    """Random_Arch() replaced by a fixed stream of (name, acc, latency) toys."""
    it = iter(archs)
    return lambda: next(it)


def _run(archs, lazy=True, **kw):
    calls = {"acc": 0, "lat": 0}

    def acc(a):
        calls["acc"] += 1
        return a[1]

    def lat(a):
        calls["lat"] += 1
        return a[2]

    settings = dict(acc_max=80.0, acc_r=1.0, lat_init=10.0, lat_add=2.0, lat_max=20.0, itr_n=3,
                    itr_max=30, key=lambda a: a[0], lazy=lazy)  # fmt: skip
    settings.update(kw)
    return random_search(_stream(archs), acc, lat, **settings), calls


def test_the_bound_is_relaxed_every_itr_n_draws_from_the_first_draw():
    # latency 15 needs the bound above 15: 12 at draws 1-3, 14 at 4-6, 16 from draw 7 on
    archs = [(f"a{i}", 79.5, 15.0) for i in range(10)]
    res, _ = _run(archs)
    assert (res.arch[0], res.draws, res.bound) == ("a6", 7, 16.0)
    res, _ = _run(archs, itr_n=1)  # relaxed every draw: 12, 14, 16 -> the third draw
    assert (res.draws, res.bound) == (3, 16.0)


def test_the_bound_never_exceeds_lat_max():
    # Lat_max 15 is not a multiple of the step: the bound stops at 15, so latency 15.5 never
    # qualifies (the printed line 6 alone would have reached 16)
    archs = [(f"a{i}", 79.5, 15.5) for i in range(30)]
    with pytest.raises(SearchExhausted) as err:
        _run(archs, lat_max=15.0)
    assert err.value.bound == 15.0 and err.value.draws == 30
    assert "Lat_max=15" in str(err.value) and "30 draws" in str(err.value)
    res, _ = _run([*archs[:8], ("ok", 79.5, 14.9)], lat_max=15.0)
    assert res.arch[0] == "ok" and res.bound == 15.0


def test_the_accuracy_band_is_strict_and_enforced():
    floor = 80.0 - 1.0
    archs = [("low", floor - 0.5, 1.0), ("edge", floor, 1.0), ("in", floor + 0.01, 1.0)]
    res, _ = _run(archs)
    assert res.arch[0] == "in" and res.acc == pytest.approx(79.01)
    assert res.draws == 3


def test_parents_are_never_returned_again():
    archs = [("p", 79.5, 1.0), ("p", 79.5, 1.0), ("q", 79.5, 1.0)]
    res, _ = _run(archs, parents=[("p", 0, 0)])
    assert res.arch[0] == "q" and res.draws == 3


def test_exhaustion_names_the_bounds_reached_and_the_best_accuracy():
    archs = itertools.cycle([("slow", 90.0, 50.0), ("weak", 70.0, 1.0)])
    with pytest.raises(SearchExhausted) as err:
        random_search(lambda: next(archs), lambda a: a[1], lambda a: a[2], acc_max=80.0,
                      acc_r=1.0, lat_init=10.0, lat_add=2.0, lat_max=20.0, itr_n=3,
                      itr_max=12)  # fmt: skip
    e = err.value
    assert (e.acc_floor, e.bound, e.draws, e.best_acc) == (79.0, 18.0, 12, 70.0)
    assert "accuracy > 79" in str(e) and "latency < 18" in str(e)


def test_lazy_prediction_returns_what_the_printed_order_returns():
    archs = [(f"a{i}", 75.0 + (i % 7), 5.0 + (i * 3) % 11) for i in range(30)]
    lazy, lazy_calls = _run(archs, lazy=True, acc_max=81.5, lat_init=5.0)
    eager, eager_calls = _run(archs, lazy=False, acc_max=81.5, lat_init=5.0)
    assert lazy == eager
    assert eager_calls["acc"] == eager.draws and lazy_calls["acc"] < eager_calls["acc"]


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"itr_n": 0}, "itr_n"), ({"lat_add": -1.0}, "lat_add"), ({"lat_max": 5.0}, "lat_max")],
)
def test_bad_settings_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        _run([("a", 1, 1)], **kw)


# Level rule ---------------------------------------------------------------------------------
def test_front_indices_drop_dominated_and_duplicate_points():
    acc = [70, 72, 71, 72, 75, 60]
    lat = [1.0, 2.0, 3.0, 2.0, 4.0, 1.5]
    assert front_indices(acc, lat) == [0, 1, 4]


def test_levels_are_the_fastest_members_reaching_1pct_steps():
    # front: (acc, lat) pairs; 0.5% apart so 1% steps skip every other one
    acc = [70.0, 70.5, 71.0, 71.5, 72.0, 72.5, 73.0, 69.0]
    lat = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 2.0]  # the last point is dominated
    idx = select_levels(acc, lat, n_levels=4, acc_step=1.0)
    assert [acc[i] for i in idx] == [70.0, 71.0, 72.0, 73.0]  # fastest first
    assert lat[idx[0]] < lat[idx[-1]]


def test_a_wide_front_widens_the_step_to_reach_the_fastest_member():
    acc = [60.0 + i for i in range(13)]  # 60 .. 72
    lat = [1.0 + 0.1 * i for i in range(13)]
    covered = select_levels(acc, lat, n_levels=7, acc_step=1.0)
    assert [acc[i] for i in covered] == [60, 62, 64, 66, 68, 70, 72]  # step 12 / 6 = 2
    top_only = select_levels(acc, lat, n_levels=7, acc_step=1.0, cover=False)
    assert [acc[i] for i in top_only] == [66, 67, 68, 69, 70, 71, 72]


def test_a_narrow_front_gives_fewer_levels():
    acc = [70.0, 70.3, 70.6]
    lat = [1.0, 2.0, 3.0]
    assert [acc[i] for i in select_levels(acc, lat, n_levels=7)] == [70.0, 70.6]


def test_a_step_target_picks_the_fastest_point_above_it():
    # targets 75, 74, 73: 74 is reached first by the 74.2 point, 73 by the 73.1 point
    acc = [73.1, 74.2, 74.9, 75.0]
    lat = [1.0, 2.0, 2.5, 3.0]
    assert select_levels(acc, lat, n_levels=3, acc_step=1.0, cover=False) == [0, 1, 3]


def test_bad_level_settings_are_named():
    with pytest.raises(ValueError, match="n_levels"):
        select_levels([1.0], [1.0], n_levels=0)
    with pytest.raises(ValueError, match="acc_step"):
        select_levels([1.0], [1.0], acc_step=0)
