"""Benchmark-table device: latency and energy from a benchmark table's device columns.

The table is passed in (``conf/hardware/table.yaml`` builds ``search.benchmarks.NB201Table``):
the NAS-Bench-201 table holds measured latency for 29 device columns (HELP and HW-NAS-Bench
releases) and energy for three (edgegpu, eyeriss, fpga). A value missing from the table is "not
measured" and comes back as ``None`` with the reason, never 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from torch import nn

from hardware.base import Architecture, arch_record


class MetricTable(Protocol):
    """What the device needs of a benchmark table (``search.benchmarks.NB201Table`` has it)."""

    source: str

    @property
    def devices(self) -> list[str]: ...

    @property
    def columns(self) -> list[str]: ...

    def column(self, metric: str, device: str | None = None) -> str: ...

    def query(self, arch: Architecture, columns: Sequence[str]) -> dict[str, float | None]: ...


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


class TableDevice:
    """A device whose metrics are looked up in a benchmark table (the NAS-Bench-201 table).

    Args:
        table: the table (:class:`MetricTable`: ``devices``, ``columns``, ``column``,
            ``query``, ``source``); the table parses the architecture, the device does not.
        device: a device of the table (``latency_ms_<device>`` column), e.g. ``pixel3``,
            ``edgegpu``, ``1080ti_1``.
        name: device name recorded in results; defaults to ``table:<device>``.
        space: unused (the table needs no network); accepted so that every device config
            instantiates the same way, ``instantiate(cfg.hardware, space=space)``.

    Raises:
        KeyError: ``device`` is not in the table (the message lists the valid devices).
    """

    def __init__(
        self,
        table: MetricTable,
        device: str,
        name: str | None = None,
        space: object | None = None,
    ) -> None:
        self.table = table
        if device not in self.table.devices:
            raise KeyError(
                f"unknown table device {device!r}; devices in the table ({table.source}): "
                f"{self.table.devices}"
            )
        self.device = device
        self.name = name or f"table:{device}"
        self.latency_column = self.table.column("latency_ms", device)
        energy = f"energy_mj_{device}"
        self.energy_column = energy if energy in self.table.columns else None

    def metrics(self, arch: Architecture, model: nn.Module | None = None) -> dict[str, Any]:
        """Table ``latency_ms`` / ``energy_mj`` of ``arch``; ``power_w`` = energy / latency.

        ``model`` is ignored: the table was measured on the benchmark's own network.
        """
        cols = [self.latency_column] + ([self.energy_column] if self.energy_column else [])
        row = self.table.query(arch, cols)
        out: dict[str, Any] = {"arch": arch_record(arch)}
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
