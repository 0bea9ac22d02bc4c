"""One network behind every metric: refuse table accuracy paired with another network's cost.

A search whose accuracy comes from the NAS-Bench-201 table (networks trained at C=16, N=5)
while latency is measured on a differently sized network optimises a front that no real
network has, so the table evaluator refuses a device on another network size unless told
(``allow_size_mismatch``); proxy counts on another size only warn.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

# the networks NAS-Bench-201's table was trained and measured on
TABLE_NETWORK = {"channels": 16, "cells_per_stage": 5}
SIZE_KEYS = tuple(TABLE_NETWORK)

Sized = tuple[dict[str, Any], str]  # (network size, where the value comes from)


def network_size(obj: Any) -> dict[str, Any] | None:
    """Size (channels, cells_per_stage) of the networks ``obj`` builds: its ``space``, or the
    space of its ``model_builder`` (a bound ``space.build_subnet``); ``None`` if unknown."""
    space = getattr(obj, "space", None)
    if space is None:
        space = getattr(getattr(obj, "model_builder", None), "__self__", None)
    if space is None or not all(hasattr(space, k) for k in SIZE_KEYS):
        return None
    return {k: getattr(space, k) for k in SIZE_KEYS}


def check_one_network(sizes: Mapping[str, Sized], allow_size_mismatch: bool = False) -> None:
    """Raise (or, with ``allow_size_mismatch``, warn) when the targets' values come from
    networks of different sizes.

    Args:
        sizes: target key -> (network size, its source) for the targets whose size is known.
        allow_size_mismatch: search anyway (a warning instead of the error).
    """
    groups: dict[tuple, list[str]] = {}
    for key, (size, source) in sizes.items():
        groups.setdefault((tuple((k, size[k]) for k in SIZE_KEYS), source), []).append(key)
    if len({size for size, _ in groups}) <= 1:
        return
    parts = [
        f"{', '.join(sorted(keys))} from {source} at " + ", ".join(f"{k}={v}" for k, v in size)
        for (size, source), keys in groups.items()
    ]
    message = (
        "the objectives come from networks of different sizes: " + "; ".join(parts) + ". The "
        "front would pair the accuracy of one network with the cost of another. Build the "
        "space at the table's size (space=nb201: channels=16, cells_per_stage=5) or measure "
        "the cost on the searched network (hardware=lut / cpu)"
    )
    if not allow_size_mismatch:
        raise ValueError(message + ", or set evaluator.allow_size_mismatch=true to search anyway")
    warnings.warn(message + " (searching anyway)", UserWarning, stacklevel=3)
