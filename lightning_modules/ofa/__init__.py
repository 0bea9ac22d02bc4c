"""Once-for-All progressive shrinking: the phase schedule and its sampler, the training module."""

from lightning_modules.ofa.module import ProgressiveShrinkingModule
from lightning_modules.ofa.phases import Phase, ShrinkingSampler, parse_phases

__all__ = ["Phase", "ProgressiveShrinkingModule", "ShrinkingSampler", "parse_phases"]
