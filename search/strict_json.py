"""JSON every parser reads, for the summaries the entry points and benchmarks write.

Python's ``json`` writes an undefined figure (NaN: the tau-b of a constant, a metric a run does
not report) as ``NaN``, which jq, JavaScript and strict readers reject; here it becomes ``null``.
"""

from __future__ import annotations

import json
import os
from typing import Any


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable: {value!r}")


def strict_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``obj`` with NaN as null, numpy / torch values as lists or numbers and
    paths as strings; any other non-JSON type raises ``TypeError``."""
    plain = json.loads(json.dumps(obj, default=_plain))
    return json.dumps(_nan_to_none(plain), allow_nan=False, **kwargs)
