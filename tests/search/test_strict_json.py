"""strict_json: the summaries' JSON, NaN written as null, every other value as json writes it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from search.strict_json import strict_json


def test_nan_anywhere_becomes_null_and_the_rest_is_kept():
    obj = {
        "tau": float("nan"),
        "np_nan": np.float64("nan"),
        "nested": {"vals": [1.5, float("nan"), np.float32(0.25)], "row": (2, float("nan"))},
        "loss": torch.tensor(0.5),
        "name": "s0",
        "none": None,
    }
    text = strict_json(obj)
    assert "NaN" not in text
    assert json.loads(text) == {
        "tau": None,
        "np_nan": None,
        "nested": {"vals": [1.5, None, 0.25], "row": [2, None]},
        "loss": 0.5,
        "name": "s0",
        "none": None,
    }
    assert strict_json({"a": 1}, indent=2) == json.dumps({"a": 1}, indent=2)


def test_arrays_and_paths_are_plain_json_and_other_objects_raise():
    text = strict_json(
        {"front": np.array([[1.0, np.nan]]), "t": torch.tensor([2, 3]), "p": Path("a/b")}
    )
    assert json.loads(text) == {"front": [[1.0, None]], "t": [2, 3], "p": "a/b"}
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        strict_json({"x": object()})
