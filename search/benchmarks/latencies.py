"""A benchmark table's device columns as one latency frame (the input of hardware.monotonicity)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from search.benchmarks.nb201 import NB201Table


def table_latencies(
    table: NB201Table, devices: Sequence[str] | None = None, metric: str = "latency_ms"
) -> pd.DataFrame:
    """Latency (or another metric) of every table architecture on every device, NaN = unmeasured.

    Returns:
        A frame indexed by arch string with one column per device.
    """
    devices = list(table.devices if devices is None else devices)
    cols = {d: table.frame[table.column(metric, d)].to_numpy(float) for d in devices}
    return pd.DataFrame(cols, index=table.frame["arch_str"].to_numpy())
