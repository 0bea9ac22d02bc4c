"""PRP-NAS: Pareto rank-preserving supernet training (losses, HVI pruning, the module)."""

from lightning_modules.prp.module import PRPModule

__all__ = ["PRPModule"]
