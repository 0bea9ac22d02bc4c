"""Dynamic-OFA's accuracy-constrained random search (Dynamic-OFA Alg. 1, section 3.2).

The paper's pseudo-code, line by line (``i`` counts draws)::

    Lat <- Lat_init; i = 0
    while i < itr_max:
        if i % itr_n == 0 and Lat < Lat_max: Lat <- Lat + Lat_add        # relax the bound
        Arch = Random_Arch(); Acc_p = Predict_Accuracy(Arch); Lat_p = Predict_Latency(Arch)
        if Acc_p > Acc_max - Acc_r and Lat_p < Lat and Arch not in Parents:
            return Arch, Acc_p, Lat_p
        i <- i + 1

Two readings are ours, both stated where they act: the relaxation is clamped at ``Lat_max``
(the text: "this relaxation cannot exceed a maximum threshold Lat_max"; the printed line 6 alone
would overshoot it by up to ``Lat_add``), and with ``lazy=True`` the accuracy predictor is only
asked for architectures whose latency already meets the bound (the condition is a conjunction,
so for deterministic predictors the returned architecture is the same; accuracy from shared
weights costs seconds, a latency prediction milliseconds). When ``itr_max`` draws find nothing
the search raises :class:`SearchExhausted` naming the bounds it reached.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Alg1Result:
    """What one call of Alg. 1 returns (``Arch, Acc_p, Lat_p``) and what it took.

    Attributes:
        arch: the qualified architecture (as ``random_arch`` returned it).
        acc: its predicted accuracy ``Acc_p``.
        latency: its predicted latency ``Lat_p``.
        bound: the latency bound ``Lat`` it met.
        draws: architectures drawn, this one included.
    """

    arch: Any
    acc: float
    latency: float
    bound: float
    draws: int


class SearchExhausted(RuntimeError):
    """Alg. 1 drew ``itr_max`` architectures and none qualified.

    Attributes:
        acc_floor: the accuracy every candidate had to beat (``Acc_max - Acc_r``).
        bound: the latency bound ``Lat`` reached at the end.
        lat_max: the cap ``Lat_max``.
        draws: architectures drawn (``itr_max``).
        best_acc: the best predicted accuracy among drawn architectures under the bound
            (``None`` if none met the bound).
    """

    def __init__(
        self, acc_floor: float, bound: float, lat_max: float, draws: int, best_acc: float | None
    ) -> None:
        self.acc_floor, self.bound, self.lat_max = acc_floor, bound, lat_max
        self.draws, self.best_acc = draws, best_acc
        seen = (
            "no draw met the latency bound"
            if best_acc is None
            else f"the best accuracy under the bound was {best_acc:.4g}"
        )
        super().__init__(
            f"Alg. 1 found no new architecture with accuracy > {acc_floor:.4g} and latency < "
            f"{bound:.4g} (bound relaxed up to Lat_max={lat_max:.4g}) in {draws} draws; {seen}. "
            "Lower Acc_max, widen Acc_r, raise Lat_max or draw more (itr_max)"
        )


def random_search(
    random_arch: Callable[[], Any],
    predict_accuracy: Callable[[Any], float],
    predict_latency: Callable[[Any], float],
    *,
    acc_max: float,
    acc_r: float,
    lat_init: float,
    lat_add: float,
    lat_max: float,
    itr_n: int,
    itr_max: int,
    parents: Collection[Any] = (),
    key: Callable[[Any], Any] = lambda arch: arch,
    lazy: bool = True,
) -> Alg1Result:
    """One call of Dynamic-OFA Alg. 1: a new architecture above ``acc_max - acc_r`` under a
    latency bound that starts at ``lat_init`` and is relaxed by ``lat_add`` every ``itr_n``
    draws, never beyond ``lat_max``.

    Args:
        random_arch: ``Random_Arch()``, one random architecture per call.
        predict_accuracy: ``Predict_Accuracy(Arch)``.
        predict_latency: ``Predict_Latency(Arch)``.
        acc_max, acc_r: the accuracy band; a candidate needs ``Acc_p > acc_max - acc_r``.
        lat_init, lat_add, lat_max: initial latency bound, its increment, its cap.
        itr_n: draws between relaxations.
        itr_max: draws before giving up.
        parents: architectures found before (compared by ``key``), never returned again.
        key: the comparable form of an architecture (e.g. its serialized string).
        lazy: predict accuracy only for draws under the latency bound (same result for
            deterministic predictors; see the module docstring).

    Raises:
        ValueError: a bad setting, naming it.
        SearchExhausted: ``itr_max`` draws found nothing.
    """
    if itr_n < 1 or itr_max < 1:
        raise ValueError(f"itr_n and itr_max must be >= 1, got itr_n={itr_n}, itr_max={itr_max}")
    if lat_add < 0 or acc_r < 0:
        raise ValueError(f"lat_add and acc_r must be >= 0, got lat_add={lat_add}, acc_r={acc_r}")
    if lat_max < lat_init:
        raise ValueError(f"lat_max ({lat_max}) must be >= lat_init ({lat_init})")
    excluded = {key(p) for p in parents}
    floor = acc_max - acc_r
    lat = lat_init  # line 2
    best_acc: float | None = None
    i = 0  # line 3
    while i < itr_max:  # line 4
        if i % itr_n == 0 and lat < lat_max:  # line 5
            lat = min(lat + lat_add, lat_max)  # line 6, clamped: "cannot exceed Lat_max"
        arch = random_arch()  # line 8
        if lazy:
            lat_p = float(predict_latency(arch))  # line 10 first: it is the cheap prediction
            acc_p = float(predict_accuracy(arch)) if lat_p < lat else None  # line 9
        else:
            acc_p = float(predict_accuracy(arch))  # line 9
            lat_p = float(predict_latency(arch))  # line 10
        if lat_p < lat and acc_p is not None:
            best_acc = acc_p if best_acc is None else max(best_acc, acc_p)
        qualifies = acc_p is not None and acc_p > floor and lat_p < lat  # line 11
        if qualifies and key(arch) not in excluded:  # line 12
            return Alg1Result(arch, acc_p, lat_p, lat, i + 1)  # line 13
        i += 1  # line 16
    raise SearchExhausted(floor, lat, lat_max, itr_max, best_acc)
