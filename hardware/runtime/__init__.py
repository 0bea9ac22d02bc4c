"""Dynamic-OFA runtime: a family of sub-networks served in process, switched by policy."""

from hardware.runtime.controller import ReactiveController
from hardware.runtime.family import (
    Family,
    FamilyFormatError,
    Level,
    load_bn,
    load_family,
    save_bn,
    save_family,
)
from hardware.runtime.load import CompetingLoad
from hardware.runtime.manager import InferenceRecord, RuntimeManager, SwitchableModel, SwitchEvent
from hardware.runtime.policies import InfeasibleConstraint, select_level
from hardware.runtime.replay import Phase, ReplayResult, Trace, compare, load_trace, replay

__all__ = [
    "CompetingLoad",
    "Family",
    "FamilyFormatError",
    "InferenceRecord",
    "InfeasibleConstraint",
    "Level",
    "Phase",
    "ReactiveController",
    "ReplayResult",
    "RuntimeManager",
    "SwitchEvent",
    "SwitchableModel",
    "Trace",
    "compare",
    "load_bn",
    "load_family",
    "load_trace",
    "replay",
    "save_bn",
    "save_family",
    "select_level",
]
