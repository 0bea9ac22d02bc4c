"""Competing CPU load for trace replay: busy worker processes, started and stopped on demand.

Each worker is a fresh ``python -c`` process (not a fork: forking a process whose OpenMP pool
is running can deadlock the child) that multiplies two numpy matrices in a tight loop at one
BLAS thread, i.e. it keeps one core busy, like the second application of Dynamic-OFA's Fig. 7.
Workers are always stopped: on :meth:`CompetingLoad.close`, on leaving the ``with`` block (also
on an error or KeyboardInterrupt), at interpreter exit, and on Linux also when this process
dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
from types import TracebackType

# Signals "ready" after its first product, so a phase's load is present from its first request.
_WORKER = """
import sys
import numpy as np
a = np.random.default_rng(0).random(({n}, {n}))
b = a.copy()
a @ b
sys.stdout.write("ready\\n"); sys.stdout.flush()
while True:
    a @ b
"""

_ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class CompetingLoad:
    """A pool of busy single-thread worker processes whose size follows the trace's phases.

    Args:
        matrix_size: side of the square matrices each worker multiplies (256: ~1 ms a product,
            so a worker stops within a product's time of a terminate).
    """

    def __init__(self, matrix_size: int = 256) -> None:
        if matrix_size < 1:
            raise ValueError(f"matrix_size must be >= 1, got {matrix_size}")
        self.matrix_size = matrix_size
        self._procs: list[subprocess.Popen] = []

    @property
    def workers(self) -> int:
        """Number of running workers."""
        return len(self._procs)

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [p.pid for p in self._procs]

    def set_workers(self, n: int) -> None:
        """Start or stop workers until ``n`` run; returns once the new ones are busy."""
        if n < 0:
            raise ValueError(f"the number of load workers must be >= 0, got {n}")
        while len(self._procs) > n:
            self._stop(self._procs.pop())
        if n > len(self._procs):
            atexit.register(self.close)
        started = []
        env = {**os.environ, **_ONE_THREAD}
        code = _WORKER.format(n=self.matrix_size)
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        while len(self._procs) < n:
            proc = subprocess.Popen(
                [sys.executable, "-c", code],
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=preexec,  # noqa: PLW1509 - only sets the parent-death signal
            )
            self._procs.append(proc)
            started.append(proc)
        for proc in started:
            # EOF (b"") when the worker died before its first product
            line = proc.stdout.readline() if proc.stdout is not None else b""
            if line.strip() != b"ready":
                self.close()
                raise RuntimeError(
                    f"a load worker failed to start (pid {proc.pid}, exit {proc.poll()}, "
                    f"said {line!r})"
                )

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        while self._procs:
            with contextlib.suppress(Exception):
                self._stop(self._procs.pop())
        atexit.unregister(self.close)

    def __enter__(self) -> CompetingLoad:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
