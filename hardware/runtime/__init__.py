"""Dynamic-OFA runtime: a family of sub-networks served in process, switched by policy."""

from hardware.runtime.controller import ReactiveController
from hardware.runtime.family import Family, Level, load_family, save_family
from hardware.runtime.manager import InferenceRecord, RuntimeManager, SwitchableModel, SwitchEvent
from hardware.runtime.policies import InfeasibleConstraint, select_level

__all__ = [
    "Family",
    "InferenceRecord",
    "InfeasibleConstraint",
    "Level",
    "ReactiveController",
    "RuntimeManager",
    "SwitchEvent",
    "SwitchableModel",
    "load_family",
    "save_family",
    "select_level",
]
