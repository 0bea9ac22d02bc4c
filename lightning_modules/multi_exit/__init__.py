"""HADAS exit training: eq. 4 loss, feature cache, Lightning modules, per-backbone pipeline."""

from lightning_modules.multi_exit.cache import FeatureCache
from lightning_modules.multi_exit.losses import distillation_kl, exit_loss
from lightning_modules.multi_exit.module import ClassifierModule, MultiExitModule
from lightning_modules.multi_exit.pipeline import ExitPipeline

__all__ = [
    "ClassifierModule",
    "ExitPipeline",
    "FeatureCache",
    "MultiExitModule",
    "distillation_kl",
    "exit_loss",
]
