"""Wall time of every training epoch, everything included (validation, end-of-epoch hooks such
as PRP-NAS's alpha step and pruning), logged and appended to a JSON-lines file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl


class EpochTimer(pl.Callback):
    """Times each epoch from one ``on_train_epoch_start`` to the next (the last one to
    ``on_train_end``), so the module's own end-of-epoch work is counted in its epoch.

    Each epoch is logged as ``time/epoch_s`` and appended to ``path`` (when given) as
    ``{"epoch": e, "wall_s": s}``; a resumed run appends its epochs to its own file.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.times: dict[int, float] = {}
        self._epoch: int | None = None
        self._start = 0.0

    def _close(self, trainer: pl.Trainer) -> None:
        if self._epoch is None:
            return
        wall = time.perf_counter() - self._start
        self.times[self._epoch] = wall
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics({"time/epoch_s": wall}, step=trainer.global_step)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a") as f:
                    f.write(json.dumps({"epoch": self._epoch, "wall_s": wall}) + "\n")
        self._epoch = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._close(trainer)
        self._epoch = trainer.current_epoch
        self._start = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._close(trainer)
