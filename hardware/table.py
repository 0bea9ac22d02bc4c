"""Benchmark-table device: NAS-Bench-201 latency and energy from the table's device columns.

The NAS-Bench-201 table (``search.benchmarks.NB201Table``) holds measured latency for 29 device
columns (HELP and HW-NAS-Bench releases) and energy for three (edgegpu, eyeriss, fpga). A value
missing from the table is "not measured" and comes back as ``None`` with the reason, never 0.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from torch import nn

from search.benchmarks import NB201Table

# Where each column set came from, and the batch size where the release states it.
_HELP_GPUS = ("1080ti", "2080ti", "titanx", "titanxp", "titan_rtx")
_HWNASBENCH = ("edgegpu", "edgetpu", "eyeriss", "fpga", "pixel3", "raspi4")


def device_info(device: str) -> dict[str, Any]:
    """Source release and batch size (None where the release does not state it) of a column."""
    for gpu in _HELP_GPUS:
        for batch in (1, 32, 256):
            if device == f"{gpu}_{batch}":
                return {"release": "HELP (HayeonLee/HELP)", "batch_size": batch}
    if device in _HWNASBENCH:
        return {"release": "HW-NAS-Bench (GATECH-EIC/HW-NAS-Bench), CIFAR-10", "batch_size": None}
    return {"release": "HELP (HayeonLee/HELP)", "batch_size": None}


@lru_cache(maxsize=4)
def _load(path: str | None) -> NB201Table:
    return NB201Table.load(path)


class TableDevice:
    """A device whose metrics are looked up in the NAS-Bench-201 table.

    Args:
        device: a device of the table (``latency_ms_<device>`` column), e.g. ``pixel3``,
            ``edgegpu``, ``1080ti_1``.
        table_path: a CSV in the bundled layout; None uses the bundled table.
        name: device name recorded in results; defaults to ``table:<device>``.
        space: unused (the table needs no network); accepted so that every device config
            instantiates the same way, ``instantiate(cfg.hardware, space=space)``.

    Raises:
        KeyError: ``device`` is not in the table (the message lists the valid devices).
    """

    def __init__(
        self,
        device: str,
        table_path: str | None = None,
        name: str | None = None,
        space: object | None = None,
    ) -> None:
        self.table = _load(table_path)
        if device not in self.table.devices:
            raise KeyError(
                f"unknown table device {device!r}; devices in the NAS-Bench-201 table: "
                f"{self.table.devices}"
            )
        self.device = device
        self.name = name or f"table:{device}"
        self.latency_column = self.table.column("latency_ms", device)
        energy = f"energy_mj_{device}"
        self.energy_column = energy if energy in self.table.columns else None

    def metrics(self, arch: str, model: nn.Module | None = None) -> dict[str, Any]:
        """Table ``latency_ms`` / ``energy_mj`` of ``arch``; ``power_w`` = energy / latency.

        ``model`` is ignored: the table was measured on the benchmark's own network.
        """
        cols = [self.latency_column] + ([self.energy_column] if self.energy_column else [])
        row = self.table.query(arch, cols)
        out: dict[str, Any] = {"arch": arch}
        lat = row[self.latency_column]
        out["latency_ms"] = lat
        if lat is None:
            out["latency_ms_reason"] = f"not measured on {self.device} in {self.table.source}"
        if self.energy_column is None:
            reason = f"the table has no energy column for {self.device}"
            out.update(energy_mj=None, energy_mj_reason=reason, power_w=None)
            out["power_w_reason"] = reason
        else:
            energy = row[self.energy_column]
            out["energy_mj"] = energy
            if energy is None:
                out["energy_mj_reason"] = f"not measured on {self.device} in {self.table.source}"
            if energy is not None and lat:
                out["power_w"] = energy / lat  # mJ / ms = W
            else:
                out["power_w"] = None
                out["power_w_reason"] = "needs both latency and energy"
        out["settings"] = {
            "device": self.name,
            "source": f"table {self.table.source}",
            "table_device": self.device,
            "frequency_setting": None,  # the releases measured at the devices' defaults
            **device_info(self.device),
        }
        return out
