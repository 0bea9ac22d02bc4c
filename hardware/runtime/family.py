"""The Dynamic-OFA family artifact: levels per processor and each member's BN statistics.

A family is a directory (the format every Dynamic-OFA helper shares)::

    family.json               {"format": 1, "space": {"name": ..., builder kwargs},
                               "checkpoint": ..., "weights_fingerprint": ..., "bn_images": ...,
                               "processors": {"<proc>": {"device": {...}, "levels": [
                                   {"level": 1, "arch": {...}, "arch_id": "...",
                                    "acc_top1": 71.2, "latency_ms": 3.1}, ...]}}}
    bn/<arch_id>.safetensors  the member's BN running_mean / running_var, keyed by the
                              supernet's state_dict names (``Supernet.bn_state()``)

Levels are sorted by profiled latency, ascending: level 1 is the fastest. The BN tensors are
read with ``safetensors.torch.load_file`` (plain tensors, never unpickled code) once, when the
family is loaded, and held in memory so a switch copies them without touching the disk
(Dynamic-OFA section 3.3: pre-computed BN statistics make the switch fast).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

FORMAT = 1
FAMILY_JSON = "family.json"
BN_DIR = "bn"
LEVEL_KEYS = ("level", "arch", "arch_id", "acc_top1", "latency_ms")
BN_SUFFIXES = ("running_mean", "running_var")


class FamilyFormatError(ValueError):
    """A family directory whose content does not follow the artifact format."""


@dataclass(frozen=True)
class Level:
    """One member of a processor's ladder: its architecture, accuracy and profiled latency.

    Attributes:
        level: 1-based rank by profiled latency on the processor (1 = fastest).
        arch: the architecture (decision label -> choice).
        arch_id: the architecture's stable id (names its BN file).
        acc_top1: top-1 accuracy in % measured when the family was built.
        latency_ms: profiled latency on the processor in ms.
    """

    level: int
    arch: dict[str, Any]
    arch_id: str
    acc_top1: float
    latency_ms: float

    def as_dict(self) -> dict[str, Any]:
        """The level as it is written in family.json."""
        return {
            "level": self.level,
            "arch": dict(self.arch),
            "arch_id": self.arch_id,
            "acc_top1": self.acc_top1,
            "latency_ms": self.latency_ms,
        }


@dataclass
class Family:
    """A loaded family: levels per processor and every member's BN tensors in memory.

    Attributes:
        path: the directory it was loaded from (None when built in memory).
        space: the space's name and builder kwargs (``{"name": "ofa_mbv3", ...}``).
        processors: processor name -> its levels, fastest first.
        bn: arch_id -> BN state (supernet state_dict name -> tensor).
        devices: processor name -> the settings of the device that profiled it.
        meta: the remaining family.json entries (checkpoint, weights_fingerprint, bn_images, ...).
    """

    path: Path | None
    space: dict[str, Any]
    processors: dict[str, list[Level]]
    bn: dict[str, dict[str, torch.Tensor]]
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def levels(self, processor: str) -> list[Level]:
        """The ladder of ``processor``, fastest first.

        Raises:
            KeyError: naming the processor and the family's processors.
        """
        if processor not in self.processors:
            where = f" in {self.path}" if self.path is not None else ""
            raise KeyError(
                f"unknown processor {processor!r}{where}; the family has: {sorted(self.processors)}"
            )
        return self.processors[processor]

    def bn_state(self, level: Level) -> dict[str, torch.Tensor]:
        """The BN tensors of a member (held in memory)."""
        return self.bn[level.arch_id]


def _level(raw: Any, processor: str, index: int, source: Path) -> Level:
    where = f"{source}: processors.{processor}.levels[{index}]"
    if not isinstance(raw, Mapping):
        raise FamilyFormatError(f"{where} is a {type(raw).__name__}, not an object")
    missing = [k for k in LEVEL_KEYS if k not in raw]
    if missing:
        raise FamilyFormatError(f"{where} lacks {missing} (a level has {list(LEVEL_KEYS)})")
    if not isinstance(raw["arch"], Mapping):
        raise FamilyFormatError(f"{where}.arch is not an object: {raw['arch']!r}")
    try:
        level = Level(
            level=int(raw["level"]),
            arch=dict(raw["arch"]),
            arch_id=str(raw["arch_id"]),
            acc_top1=float(raw["acc_top1"]),
            latency_ms=float(raw["latency_ms"]),
        )
    except (TypeError, ValueError) as err:
        raise FamilyFormatError(f"{where} has a value of the wrong type: {err}") from None
    if not (math.isfinite(level.latency_ms) and level.latency_ms > 0):
        raise FamilyFormatError(f"{where}.latency_ms must be > 0, got {level.latency_ms}")
    if not math.isfinite(level.acc_top1):
        raise FamilyFormatError(f"{where}.acc_top1 must be finite, got {level.acc_top1}")
    return level


def _check_ladder(levels: list[Level], processor: str, source: Path) -> None:
    if not levels:
        raise FamilyFormatError(f"{source}: processor {processor!r} has no levels")
    numbers = [lv.level for lv in levels]
    if numbers != list(range(1, len(levels) + 1)):
        raise FamilyFormatError(
            f"{source}: processor {processor!r} levels are numbered {numbers}, expected "
            f"1..{len(levels)} in order"
        )
    lat = [lv.latency_ms for lv in levels]
    if any(b < a for a, b in zip(lat, lat[1:], strict=False)):
        raise FamilyFormatError(
            f"{source}: processor {processor!r} levels must be sorted by latency_ms ascending "
            f"(level 1 = fastest), got {lat}"
        )


def load_family(path: str | Path, processors: Sequence[str] | None = None) -> Family:
    """Load a family directory: family.json and every member's BN tensors, once.

    Args:
        path: the family directory.
        processors: load only these processors' levels and BN files (None: all).

    Raises:
        FileNotFoundError: the directory, family.json or a member's BN file is missing.
        KeyError: a requested processor is not in the family (the valid ones are named).
        FamilyFormatError: the content does not follow the format (what and where is named).
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(
            f"family directory {str(root)!r} does not exist (it holds {FAMILY_JSON} and "
            f"{BN_DIR}/<arch_id>.safetensors)"
        )
    meta_path = root / FAMILY_JSON
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} is missing: {root} is not a family directory")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise FamilyFormatError(f"{meta_path} is not valid JSON: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise FamilyFormatError(f"{meta_path}: format {got!r} is not supported (expected {FORMAT})")
    for key in ("space", "processors"):
        if not isinstance(meta.get(key), dict):
            raise FamilyFormatError(f"{meta_path} lacks the object {key!r}")
    if "name" not in meta["space"]:
        raise FamilyFormatError(f"{meta_path}: space has no 'name'")
    raw_procs = meta.pop("processors")
    wanted = list(raw_procs) if processors is None else list(processors)
    unknown = [p for p in wanted if p not in raw_procs]
    if unknown:
        raise KeyError(
            f"unknown processor(s) {unknown} in {meta_path}; the family has: {sorted(raw_procs)}"
        )
    ladders: dict[str, list[Level]] = {}
    devices: dict[str, dict[str, Any]] = {}
    for proc in wanted:
        entry = raw_procs[proc]
        if not isinstance(entry, Mapping) or not isinstance(entry.get("levels"), list):
            raise FamilyFormatError(f"{meta_path}: processors.{proc} has no 'levels' list")
        ladders[proc] = [_level(r, proc, i, meta_path) for i, r in enumerate(entry["levels"])]
        _check_ladder(ladders[proc], proc, meta_path)
        devices[proc] = dict(entry.get("device") or {})
    bn: dict[str, dict[str, torch.Tensor]] = {}
    for lv in (lv for ladder in ladders.values() for lv in ladder):
        if lv.arch_id in bn:
            continue
        file = root / BN_DIR / f"{lv.arch_id}.safetensors"
        if not file.is_file():
            raise FileNotFoundError(
                f"BN statistics of level {lv.level} (arch_id {lv.arch_id}) missing: {file}"
            )
        bn[lv.arch_id] = load_file(str(file))
        if not bn[lv.arch_id]:
            raise FamilyFormatError(f"{file} holds no tensors")
    space = meta.pop("space")
    return Family(path=root, space=space, processors=ladders, bn=bn, devices=devices, meta=meta)


def save_family(
    path: str | Path,
    space: Mapping[str, Any],
    processors: Mapping[str, Sequence[Mapping[str, Any] | Level]],
    bn: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
    devices: Mapping[str, Mapping[str, Any]] | None = None,
    checkpoint: str | None = None,
    weights_fingerprint: str | None = None,
    bn_images: int | None = None,
    **extra: Any,
) -> Path:
    """Write a family directory in the artifact format; returns the path of family.json.

    Levels may be given in any order: they are sorted by ``latency_ms`` and numbered 1..n
    here (any ``level`` given is replaced), so every writer produces the same ladder. Fields of
    a level beyond the five of the format (e.g. how its latency was obtained) are kept.

    Args:
        path: the directory (created).
        space: ``{"name": <space name>, **builder kwargs}``.
        processors: processor name -> levels (``arch``, ``arch_id``, ``acc_top1``,
            ``latency_ms``; a :class:`Level` or a mapping).
        bn: arch_id -> BN state (the supernet's ``bn_state()`` of that member, or any state
            dict: only running statistics are kept). A member left out must already have its
            file in ``path`` (written earlier with :func:`save_bn`, as the family search does
            while it re-measures candidates).
        devices: processor name -> settings of the device that profiled it.
        checkpoint: the supernet checkpoint the family was built from.
        weights_fingerprint: fingerprint of its weights.
        bn_images: images used to compute each member's BN statistics.
        **extra: further JSON entries (e.g. how accuracy was measured).

    Raises:
        ValueError: a level lacks a key, or a member has neither a BN state nor a BN file.
    """
    root = Path(path)
    if "name" not in space:
        raise ValueError(f"space needs a 'name' (the registered space), got keys {list(space)}")
    out_procs: dict[str, Any] = {}
    needed: set[str] = set()
    for proc, levels in processors.items():
        rows = [lv.as_dict() if isinstance(lv, Level) else dict(lv) for lv in levels]
        for row in rows:
            missing = [k for k in LEVEL_KEYS[1:] if k not in row]
            if missing:
                raise ValueError(f"a level of processor {proc!r} lacks {missing}: {row}")
        rows.sort(key=lambda r: float(r["latency_ms"]))
        ladder = [
            {
                **r,
                "level": i,
                "arch": dict(r["arch"]),
                "arch_id": str(r["arch_id"]),
                "acc_top1": float(r["acc_top1"]),
                "latency_ms": float(r["latency_ms"]),
            }
            for i, r in enumerate(rows, start=1)
        ]
        needed |= {r["arch_id"] for r in ladder}
        out_procs[proc] = {"device": dict((devices or {}).get(proc, {})), "levels": ladder}
    bn = bn or {}
    lacking = sorted(a for a in needed - set(bn) if not bn_path(root, a).is_file())
    if lacking:
        raise ValueError(f"no BN state given and no BN file in {root / BN_DIR} for {lacking}")
    for arch_id in sorted(needed & set(bn)):
        save_bn(root, arch_id, bn[arch_id])
    meta = {
        "format": FORMAT,
        "space": dict(space),
        "checkpoint": checkpoint,
        "weights_fingerprint": weights_fingerprint,
        "bn_images": bn_images,
        **extra,
        "processors": out_procs,
    }
    out = root / FAMILY_JSON
    root.mkdir(parents=True, exist_ok=True)
    text = json.dumps(meta, indent=2, default=_plain) + "\n"
    _atomic(out, lambda tmp: Path(tmp).write_text(text))
    return out


def bn_path(path: str | Path, arch_id: str) -> Path:
    """Where a member's BN statistics live in a family directory."""
    return Path(path) / BN_DIR / f"{arch_id}.safetensors"


def bn_tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The BN running statistics of a state dict (weights and ``num_batches_tracked``
    dropped), as contiguous CPU copies: safetensors stores no shared storage."""
    return {
        k: v.detach().cpu().contiguous().clone()
        for k, v in state.items()
        if k.endswith(BN_SUFFIXES)
    }


def save_bn(path: str | Path, arch_id: str, state: Mapping[str, torch.Tensor]) -> Path:
    """Write a member's BN statistics (:func:`bn_tensors` of ``state``) atomically.

    Raises:
        ValueError: ``state`` holds no running statistics.
    """
    tensors = bn_tensors(state)
    if not tensors:
        raise ValueError(f"the BN state of {arch_id} has no running_mean / running_var entries")
    out = bn_path(path, arch_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic(out, lambda tmp: save_file(tensors, tmp, metadata={"arch_id": arch_id}))
    return out


def load_bn(path: str | Path, arch_id: str) -> dict[str, torch.Tensor]:
    """One member's BN statistics from a family directory (plain tensors, never unpickled).

    Raises:
        FileNotFoundError: naming the missing file.
    """
    file = bn_path(path, arch_id)
    if not file.is_file():
        raise FileNotFoundError(f"no BN statistics for member {arch_id}: {file} does not exist")
    return load_file(str(file))


def _plain(value: Any) -> Any:
    """JSON form of numpy scalars and tuples/sets in extra fields."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def _atomic(path: Path, write) -> None:
    """Write through a temporary name and rename, so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    write(str(tmp))
    os.replace(tmp, path)
