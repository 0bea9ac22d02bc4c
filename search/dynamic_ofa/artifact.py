"""The family artifact: ``family.json`` plus ``bn/<arch_id>.safetensors`` per member.

Layout (``format`` 1, the contract ``hardware.runtime`` reads)::

    family.json  {"format": 1, "space": {"name": "ofa_mbv3", ...builder kwargs},
                  "checkpoint": "<supernet ckpt>", "weights_fingerprint": "<sha1[:16]>",
                  "bn_images": 2000,
                  "processors": {"<proc>": {"device": {...settings},
                                            "levels": [{"level": 1, "arch": {...},
                                                        "arch_id": "...", "acc_top1": 71.2,
                                                        "latency_ms": 3.1}, ...]}}}
    bn/<arch_id>.safetensors   the member's BN running_mean / running_var, keyed by the
                               supernet's state_dict names (``bn_state()`` form)

Levels are sorted by latency ascending (level 1 = fastest). The BN files are plain tensors
(safetensors: no pickle, nothing to execute), shared by processors that pick the same member.
Each file is written to a temporary name and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

FORMAT = 1
BN_SUFFIXES = ("running_mean", "running_var")
LEVEL_KEYS = ("level", "arch", "arch_id", "acc_top1", "latency_ms")


def bn_tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The BN running statistics of a state dict (``num_batches_tracked`` and weights dropped),
    as contiguous CPU tensors."""
    return {
        k: v.detach().to("cpu").contiguous().clone()
        for k, v in state.items()
        if k.endswith(BN_SUFFIXES)
    }


def bn_path(directory: str | Path, arch_id: str) -> Path:
    """Where a member's BN statistics live in an artifact directory."""
    return Path(directory) / "bn" / f"{arch_id}.safetensors"


def save_bn(directory: str | Path, arch_id: str, state: Mapping[str, torch.Tensor]) -> Path:
    """Write a member's BN statistics (``bn_tensors(state)``) atomically; returns the path."""
    tensors = bn_tensors(state)
    if not tensors:
        raise ValueError(f"no running_mean / running_var entries in the BN state of {arch_id}")
    path = bn_path(directory, arch_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"arch_id": arch_id})
    os.replace(tmp, path)
    return path


def load_bn(directory: str | Path, arch_id: str) -> dict[str, torch.Tensor]:
    """A member's BN statistics from an artifact directory (no unpickling)."""
    path = bn_path(directory, arch_id)
    if not path.is_file():
        raise FileNotFoundError(f"no BN statistics for member {arch_id}: {path} does not exist")
    return load_file(str(path))


def write_family(
    directory: str | Path,
    *,
    space: Mapping[str, Any],
    checkpoint: str,
    weights_fingerprint: str,
    bn_images: int,
    processors: Mapping[str, Mapping[str, Any]],
) -> Path:
    """Write ``family.json`` (the BN files are written with :func:`save_bn`); returns its path.

    Args:
        space: ``{"name": ..., **builder kwargs}`` of the space the supernet was built from.
        checkpoint: the supernet checkpoint the family's weights come from.
        weights_fingerprint: fingerprint of those weights.
        bn_images: training images each member's BN statistics were computed on.
        processors: ``{proc: {"device": settings, "levels": [{level, arch, arch_id, acc_top1,
            latency_ms, ...}]}}``; levels are re-sorted by latency and renumbered from 1.

    Raises:
        ValueError: a level lacks a field, the space has no name, or a member's BN file is
            missing from ``directory``.
    """
    directory = Path(directory)
    if "name" not in space:
        raise ValueError(f"the space entry needs its registered name, got {dict(space)}")
    out: dict[str, Any] = {}
    for proc, entry in processors.items():
        for lv in entry["levels"]:
            missing = [k for k in LEVEL_KEYS[1:] if k not in lv]
            if missing:
                raise ValueError(f"a level of processor {proc!r} lacks {missing}: {dict(lv)}")
        levels = sorted(entry["levels"], key=lambda lv: (lv["latency_ms"], lv["acc_top1"]))
        rows = []
        for n, lv in enumerate(levels, start=1):
            if not bn_path(directory, lv["arch_id"]).is_file():
                raise ValueError(
                    f"member {lv['arch_id']} of {proc!r} has no BN file in {directory / 'bn'}"
                )
            rows.append({**dict(lv), "level": n})
        out[proc] = {"device": dict(entry.get("device", {})), "levels": rows}
    doc = {
        "format": FORMAT,
        "space": dict(space),
        "checkpoint": str(checkpoint),
        "weights_fingerprint": weights_fingerprint,
        "bn_images": int(bn_images),
        "processors": out,
    }
    path = directory / "family.json"
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=_plain))
    os.replace(tmp, path)
    return path


def read_family(directory: str | Path) -> dict[str, Any]:
    """``family.json`` of an artifact directory, checked for its format."""
    path = Path(directory) / "family.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (write the family with search.py first)")
    doc = json.loads(path.read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path} has format {doc.get('format')!r}; this reader knows {FORMAT}")
    return doc


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
