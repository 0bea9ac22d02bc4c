"""strict_json: the summaries' JSON, NaN written as null, every other value as json writes it."""

from __future__ import annotations

import json

import numpy as np
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
