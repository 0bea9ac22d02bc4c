"""LUT-sum latency predictor: recovers per-op costs."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.predictors import LutSumPredictor
from search.spaces import create_space


@pytest.fixture(scope="module")
def encodings():
    space = create_space("nb201")
    return np.stack([space.encode(a) for a in space.sample_unique(np.random.default_rng(0), 800)])


def test_lut_sum_recovers_per_op_costs(encodings):
    op_ms = np.array([0.0, 0.1, 0.7, 2.5, 0.4])  # none, skip, conv1x1, conv3x3, avg_pool
    y = 1.3 + op_ms[encodings].sum(1)
    model = LutSumPredictor((5,) * 6).fit(encodings[:100], y[:100])
    assert model.op_ms_ == pytest.approx([*op_ms[1:], 1.3], abs=1e-9)
    assert model.predict(encodings[100:]) == pytest.approx(y[100:])
    with pytest.raises(ValueError, match="sharing one op set"):
        LutSumPredictor((5, 4)).fit(encodings[:, :2], y)
