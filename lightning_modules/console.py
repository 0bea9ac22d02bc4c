"""A quiet console for the entry points: Lightning and W&B noise that says nothing about a run."""

from __future__ import annotations

import logging
import warnings
from typing import Any

# Lightning's deprecation of its own pytree helper, its advert for a cloud logger, and the note
# that a full validation set is used.
_LIGHTNING_NOISE = ("💡 Tip:", "`Trainer(limit_val_batches=1.0)` was configured")
_LIGHTNING_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning.pytorch.utilities.rank_zero",
)


class _DropLightningNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_LIGHTNING_NOISE)


def quiet_console() -> None:
    """Filter Lightning's ``LeafSpec`` deprecation, tip advert and full-validation note."""
    warnings.filterwarnings("ignore", message=".*LeafSpec")
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLightningNoise) for f in logger.filters):
            logger.addFilter(_DropLightningNoise())


def quiet_logger(logger: Any) -> Any:
    """The Lightning logger without W&B's "anonymous" warning: Lightning always passes
    ``anonymous=None``, which W&B >= 0.19 warns about at every init."""
    if hasattr(logger, "_wandb_init"):
        logger._wandb_init.pop("anonymous", None)
    return logger


def finish_logger(logger: Any) -> None:
    """Finish the W&B run behind a Lightning logger (no-op for others or None): called in a
    ``finally:`` so one failed job does not break the next job of a multirun."""
    if logger is not None and type(logger).__name__ == "WandbLogger":
        import wandb

        wandb.finish()
