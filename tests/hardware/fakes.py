"""Stand-ins for platform libraries the tests cannot rely on (pynvml without a GPU)."""

from __future__ import annotations

import types


class FakeNVML(types.SimpleNamespace):
    """Just enough of pynvml for the meter and the clock backend."""

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):
        pass

    class NVMLError_NoPermission(NVMLError):
        pass

    def __init__(self, energy=True):
        super().__init__(energy_mj=1000, has_energy=energy, calls=[])

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByUUID(self, uuid):
        return "h"

    def nvmlDeviceGetHandleByIndex(self, i):
        return "h"

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if not self.has_energy:
            raise self.NVMLError_NotSupported("Not Supported")
        return self.energy_mj
