"""Latency lookup table built with forward hooks (PRP-NAS appendix E), for any ``nn.Module``.

Building: every leaf module (a module without children) of the network gets a forward hook;
one forward pass records each call's *op signature* (module class, its constructor settings,
input and output shapes, dtypes and memory formats) in call order. Tensor functions called
outside leaf modules (a residual addition, ``torch.zeros_like``, ``flatten``) are ops too,
recorded through a ``TorchFunctionMode`` (``functional=False`` leaves them to the fixed part).
Every signature not yet in the table is then timed in isolation on the device at hand (the
module or function itself on a copy of the input it saw), under the device's timing protocol,
and stored as
``{signature: {count, mean_ms, std_ms, median_ms, iqr_ms}}`` (``count`` = timed samples) in a
JSON file with the device's settings. The file is rewritten after every new signature, so an
interrupted build resumes where it stopped and a rerun skips the signatures already timed.

Prediction: ``latency = sum over the network's op calls of the op's time
+ n_calls * per_call_ms + fixed_ms``. The two calibrated terms are what isolated op timing does
not see. ``per_call_ms`` is the per-call difference between an op inside the network and the
same op timed alone: module dispatch, the Python of non-leaf ``forward`` methods between calls
and cache effects on a CPU (positive), or, on a GPU, the launch latency and event overhead an
isolated timing pays per op but a network pipelines away (negative). ``fixed_ms`` is the
once-per-forward rest. Both are fitted by bounded least squares to (measured whole-network
latency - op sum) over ``calibrate`` networks chosen to span the op-call counts of the
networks the table was built on, each measured as the median of interleaved passes
(``per_call_ms`` >= minus the fastest op, so no op's effective time goes below zero). The
per-call term is kept only where its leave-one-out error on the calibration networks is below
that of the intercept alone (``fixed_ms`` = median of measured - op sum); both and the
calibration record are stored with the table.

Modules: :mod:`~hardware.lut.trace` (op tracing), :mod:`~hardware.lut.table` (the LUT and its
JSON file), :mod:`~hardware.lut.calibration` (the per-call and fixed terms),
:mod:`~hardware.lut.build` (building over networks), :mod:`~hardware.lut.device` (the device).

Build for a registered search space from the command line (resumable; rerun the same command
to continue; the CLI lives in ``search`` because it needs the space registry)::

    python -m search.lut_cli --space nb201 --channels 16 --cells 5 --n-archs 200 \
        --threads 2 --calibrate 10 --out luts/nb201_c16_n5_cpu.json
"""

from hardware.lut.build import build_lut
from hardware.lut.calibration import fit_overheads, spanning_subset
from hardware.lut.device import LUTDevice
from hardware.lut.table import FORMAT, LatencyLUT, MissingOpsError
from hardware.lut.trace import OpTrace, function_signature, op_signature, trace_ops

__all__ = [
    "FORMAT",
    "LUTDevice",
    "LatencyLUT",
    "MissingOpsError",
    "OpTrace",
    "build_lut",
    "fit_overheads",
    "function_signature",
    "op_signature",
    "spanning_subset",
    "trace_ops",
]
