"""The OFA MobileNetV3 search space: decisions, validation, encoding, sampling, networks.

An architecture is a plain dict (Once-for-All, Cai et al. ICLR 2020; Dynamic-OFA, Lou et al.
2021) with S stages of at most D = max(depths) blocks each::

    {"resolution": 32,
     "stage1.depth": 3, "stage1.block0.ks": 5, "stage1.block0.expand": 6, ...,
     "stage5.block3.ks": 3, "stage5.block3.expand": 3}

Blocks j >= depth of a stage are not run and carry no weights in the sub-network, so
:meth:`OFAMobileNetV3Space.parse` sets their ``ks``/``expand`` to the *first* choice of the
decision: every network has exactly one architecture dict, one serialized string (canonical
JSON) and one id. ``decode`` and ``sample`` return parsed (normalised) architectures, so
``decode(encode(a)) == parse(a)``; two vectors that differ only in inactive blocks decode to
the same architecture.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from search.spaces.base import Architecture, DecisionSpace, canonical_json
from search.spaces.ofa_mbv3.layers import ACTIVATIONS, make_divisible

# MobileNetV3-Large's stage widths, activations and SE placement (OFA's OFAMobileNetV3) with
# CIFAR strides: at 32 px a stride-1 first conv and first stage keep a 2x2 final map, where the
# ImageNet strides (2 in the first conv, 2 2 2 1 2 in the stages) leave 1x1.
DEFAULT_WIDTHS: tuple[int, ...] = (24, 40, 80, 112, 160)
DEFAULT_STRIDES: tuple[int, ...] = (1, 2, 2, 1, 2)
DEFAULT_ACTS: tuple[str, ...] = ("relu", "relu", "h_swish", "h_swish", "h_swish")
DEFAULT_SE: tuple[bool, ...] = (False, True, False, True, True)
FIRST_WIDTH = 16  # first conv and first block (MobileNetV3)
FINAL_EXPAND_WIDTH = 960
FEATURE_MIX_WIDTH = 1280


def _choices(name: str, values: Any, kind: type | tuple[type, ...], ok, what: str) -> tuple:
    """Validated, duplicate-free tuple of choices (order kept: the first is the default)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a sequence of {what}, got {values!r}")
    vals = tuple(values)
    bad = [v for v in vals if isinstance(v, bool) or not isinstance(v, kind) or not ok(v)]
    if not vals or bad or len(set(vals)) != len(vals):
        raise ValueError(
            f"{name} must be a non-empty sequence of distinct {what}, got {list(vals)}"
            + (f" (bad: {bad})" if bad else "")
        )
    return vals


def _per_stage(name: str, given: Any, default: tuple, stages: int, ok, what: str) -> tuple:
    if given is None:
        if stages > len(default):
            raise ValueError(
                f"{stages} stages but the default {name} has {len(default)} entries; "
                f"give {name} explicitly (one {what} per stage)"
            )
        return default[:stages]
    if isinstance(given, (str, bytes)) or not isinstance(given, Iterable):
        raise ValueError(f"{name} must be a sequence (one {what} per stage), got {given!r}")
    vals = tuple(given)
    if len(vals) != stages:
        raise ValueError(f"{name} has {len(vals)} entries, need one per stage ({stages}): {vals}")
    bad = [v for v in vals if not ok(v)]
    if bad:
        raise ValueError(f"{name} must hold {what} per stage, got {list(vals)} (bad: {bad})")
    return vals


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class OFAMobileNetV3Space(DecisionSpace):
    """Elastic MobileNetV3 (OFA): resolution, depth per stage, kernel size and expand ratio per
    block; stage widths, strides and counts are configuration (CIFAR-10 defaults).

    Args:
        width_mult: multiplier of every width (MobileNetV3 base widths), made divisible by 8.
        stages: number of elastic stages S; default ``len(widths)`` (5). With fewer stages the
            default per-stage lists are cut to their first S entries.
        widths: base output width of each stage (before ``width_mult``).
        strides: stride of each stage's first block (1 or 2).
        acts: activation of each stage (``relu`` or ``h_swish``).
        se: whether each stage's blocks use squeeze-and-excitation.
        first_stride: stride of the first 3x3 conv (1 on CIFAR, 2 on ImageNet).
        resolutions: input resolution choices in pixels (the network resizes its input).
        depths: blocks-per-stage choices; the deepest is D, the blocks each stage holds.
        kernel_sizes: depthwise kernel choices (odd).
        expand_ratios: expand ratio choices (middle channels = in x ratio, divisible by 8).
        num_classes: classifier outputs.
        dropout: dropout before the classifier.
    """

    name = "ofa_mbv3"

    def __init__(
        self,
        width_mult: float = 0.5,
        stages: int | None = None,
        widths: Sequence[int] | None = None,
        strides: Sequence[int] | None = None,
        acts: Sequence[str] | None = None,
        se: Sequence[bool] | None = None,
        first_stride: int = 1,
        resolutions: Sequence[int] = (24, 28, 32),
        depths: Sequence[int] = (2, 3, 4),
        kernel_sizes: Sequence[int] = (3, 5, 7),
        expand_ratios: Sequence[float] = (3, 4, 6),
        num_classes: int = 10,
        dropout: float = 0.0,
    ) -> None:
        if (
            isinstance(width_mult, bool)
            or not isinstance(width_mult, (int, float))
            or not (width_mult > 0)
        ):
            raise ValueError(f"width_mult must be a number > 0, got {width_mult!r}")
        if widths is not None and stages is None:
            stages = len(tuple(widths))
        stages = len(DEFAULT_WIDTHS) if stages is None else stages
        if not _is_int(stages) or stages < 1:
            raise ValueError(f"stages must be an int >= 1, got {stages!r}")
        self.width_mult = float(width_mult)
        self.stages = stages
        self.widths = _per_stage(
            "widths", widths, DEFAULT_WIDTHS, stages, lambda v: _is_int(v) and v > 0, "int > 0"
        )
        self.strides = _per_stage(
            "strides",
            strides,
            DEFAULT_STRIDES,
            stages,
            lambda v: _is_int(v) and v in (1, 2),
            "stride 1 or 2",
        )
        self.acts = _per_stage(
            "acts", acts, DEFAULT_ACTS, stages, lambda v: v in ACTIVATIONS, f"one of {ACTIVATIONS}"
        )
        self.se = _per_stage("se", se, DEFAULT_SE, stages, lambda v: isinstance(v, bool), "bool")
        if not _is_int(first_stride) or first_stride not in (1, 2):
            raise ValueError(f"first_stride must be 1 or 2, got {first_stride!r}")
        self.first_stride = first_stride
        self.resolutions = _choices(
            "resolutions", resolutions, int, lambda v: v > 0, "ints > 0 (pixels)"
        )
        self.depths = _choices("depths", depths, int, lambda v: v > 0, "ints > 0")
        self.kernel_sizes = _choices(
            "kernel_sizes", kernel_sizes, int, lambda v: v > 0 and v % 2 == 1, "odd ints > 0"
        )
        self.expand_ratios = _choices(
            "expand_ratios", expand_ratios, (int, float), lambda v: v > 0, "numbers > 0"
        )
        if not _is_int(num_classes) or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
        self.num_classes = num_classes
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, (int, float))
            or not (0 <= dropout < 1)
        ):
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.max_depth = max(self.depths)

        # Resolved widths (OFA: make_divisible(base * width_mult, 8)).
        w = self.width_mult
        self.first_width = make_divisible(FIRST_WIDTH * w)
        self.stage_widths = tuple(make_divisible(c * w) for c in self.widths)
        self.final_expand_width = make_divisible(FINAL_EXPAND_WIDTH * w)
        self.last_channel = make_divisible(FEATURE_MIX_WIDTH * w)

        labels: dict[str, tuple[Any, ...]] = {"resolution": self.resolutions}
        self.stage_labels: list[tuple[str, list[tuple[str, str]]]] = []
        for i in range(1, stages + 1):
            labels[f"stage{i}.depth"] = self.depths
            blocks = []
            for j in range(self.max_depth):
                ks, ex = f"stage{i}.block{j}.ks", f"stage{i}.block{j}.expand"
                labels[ks], labels[ex] = self.kernel_sizes, self.expand_ratios
                blocks.append((ks, ex))
            self.stage_labels.append((f"stage{i}.depth", blocks))
        self._decisions = labels
        # (type, value) pairs: a membership test that also tells 3 from 3.0, "3" and True
        self._allowed = {label: {(type(c), c) for c in cs} for label, cs in labels.items()}

    # Configuration -------------------------------------------------------------------------
    @property
    def kwargs(self) -> dict[str, Any]:
        """Builder keyword arguments that rebuild this space (JSON-serialisable):
        ``create_space("ofa_mbv3", **space.kwargs)``."""
        return {
            "width_mult": self.width_mult,
            "stages": self.stages,
            "widths": list(self.widths),
            "strides": list(self.strides),
            "acts": list(self.acts),
            "se": list(self.se),
            "first_stride": self.first_stride,
            "resolutions": list(self.resolutions),
            "depths": list(self.depths),
            "kernel_sizes": list(self.kernel_sizes),
            "expand_ratios": list(self.expand_ratios),
            "num_classes": self.num_classes,
            "dropout": self.dropout,
        }

    @property
    def num_archs(self) -> int:
        """Number of distinct (normalised) architectures."""
        per_block = len(self.kernel_sizes) * len(self.expand_ratios)
        per_stage = sum(per_block**d for d in self.depths)
        return len(self.resolutions) * per_stage**self.stages

    # Decisions and forms ---------------------------------------------------------------
    @property
    def decisions(self) -> dict[str, tuple[Any, ...]]:
        """Decision label -> choices, in encoding order (resolution, then per stage its depth
        and per block its ``ks`` and ``expand``)."""
        return dict(self._decisions)

    def parse(self, arch: str | Mapping[str, Any]) -> Architecture:
        """The validated, normalised dict of an architecture (a dict or its JSON string).

        Choices must match in value *and* type (``3``, not ``3.0``, ``"3"`` or ``True``), so
        an architecture has one canonical string. Blocks at or past a stage's depth get the
        first choice of ``ks`` and ``expand``.

        Raises:
            ValueError: naming the bad decision or value and what is valid.
        """
        arch = self._mapping(arch)
        decisions = self._decisions
        if len(arch) != len(decisions) or any(label not in arch for label in decisions):
            missing = [d for d in decisions if d not in arch]
            extra = [d for d in arch if d not in decisions]
            raise ValueError(
                f"{self.name} architecture: missing decisions {missing}, unknown decisions "
                f"{extra}; the decisions are 'resolution', 'stage<i>.depth', "
                f"'stage<i>.block<j>.ks', 'stage<i>.block<j>.expand' for i in 1..{self.stages},"
                f" j in 0..{self.max_depth - 1}"
            )
        out: Architecture = {}
        allowed = self._allowed
        for label, choices in decisions.items():
            value = arch[label]
            try:
                ok = (type(value), value) in allowed[label]
            except TypeError:  # unhashable
                ok = False
            if not ok:
                raise ValueError(
                    f"invalid choice {value!r} ({type(value).__name__}) for {label!r} in "
                    f"{self.name}; valid: {list(choices)}"
                )
            out[label] = value
        for depth_label, blocks in self.stage_labels:
            for ks, ex in blocks[out[depth_label] :]:
                out[ks], out[ex] = self.kernel_sizes[0], self.expand_ratios[0]
        return out

    def serialize(self, arch: str | Mapping[str, Any]) -> str:
        """Canonical JSON of the normalised architecture (the archive key)."""
        return canonical_json(self.parse(arch))

    def decode(self, vector: Iterable[int]) -> Architecture:
        """The (normalised) architecture of an integer vector (one choice index per decision)."""
        return self.parse(super().decode(vector))

    def features(self, arch: str | Mapping[str, Any]) -> np.ndarray:
        """Predictor features: resolution and depth indexes, then per block ``ks`` and
        ``expand`` as 1 + choice index, or 0 for a block past its stage's depth (so a predictor
        sees which blocks exist; the plain encoding gives them a real-looking choice 0)."""
        a = self.parse(arch)
        feats = [self.resolutions.index(a["resolution"])]
        for depth_label, blocks in self.stage_labels:
            d = a[depth_label]
            feats.append(self.depths.index(d))
            for j, (ks, ex) in enumerate(blocks):
                active = j < d
                feats.append(self.kernel_sizes.index(a[ks]) + 1 if active else 0)
                feats.append(self.expand_ratios.index(a[ex]) + 1 if active else 0)
        return np.array(feats, dtype=np.int64)

    @property
    def feature_choices(self) -> list[int]:
        """Number of values of each entry of :meth:`features`."""
        block = [len(self.kernel_sizes) + 1, len(self.expand_ratios) + 1]
        return [len(self.resolutions)] + ([len(self.depths)] + block * self.max_depth) * self.stages

    # Sampling --------------------------------------------------------------------------
    def sample(
        self,
        rng: np.random.Generator,
        n: int | None = None,
        *,
        resolutions: Sequence[int] | None = None,
        depths: Sequence[int] | None = None,
        kernel_sizes: Sequence[int] | None = None,
        expand_ratios: Sequence[float] | None = None,
    ) -> Architecture | list[Architecture]:
        """Uniformly random decisions (so depth is uniform per stage), normalised; ``n=None``
        returns one architecture.

        The keyword arguments restrict a kind of decision to a subset of its choices, e.g. the
        elastic-kernel phase of progressive shrinking samples
        ``sample(rng, depths=[4], expand_ratios=[6])``. Unrestricted, the draws are those of
        :meth:`DecisionSpace.sample` (same generator calls, same architectures).

        Raises:
            ValueError: for a restriction that is empty or not a subset of the space's choices.
        """
        subsets = {}
        for kind, given in (
            ("resolutions", resolutions),
            ("depths", depths),
            ("kernel_sizes", kernel_sizes),
            ("expand_ratios", expand_ratios),
        ):
            full = getattr(self, kind)
            if given is None:
                subsets[kind] = full
                continue
            sub = tuple(given)
            if not sub or any(not any(v == c and type(v) is type(c) for c in full) for v in sub):
                raise ValueError(
                    f"{kind}={list(sub)} must be a non-empty subset of the space's {list(full)}"
                )
            subsets[kind] = tuple(c for c in full if c in sub)  # the space's order
        kind_of = {"resolution": "resolutions", "depth": "depths", "ks": "kernel_sizes"}
        choices = [
            subsets[kind_of.get(label.rsplit(".", 1)[-1], "expand_ratios")]
            for label in self._decisions
        ]
        sizes = [len(c) for c in choices]
        vecs = rng.integers(0, sizes, size=(1 if n is None else n, len(sizes)))
        labels = list(self._decisions)
        archs = [
            self.parse({lab: c[v] for lab, c, v in zip(labels, choices, vec, strict=True)})
            for vec in vecs
        ]
        return archs[0] if n is None else archs

    def sample_unique(self, rng: np.random.Generator, n: int) -> list[Architecture]:
        """``n`` distinct architectures, drawn as :meth:`sample` draws, repeats rejected."""
        if not _is_int(n) or not 0 <= n <= self.num_archs:
            raise ValueError(f"can draw 0..{self.num_archs} distinct {self.name} archs, got {n!r}")
        seen: dict[str, Architecture] = {}
        while len(seen) < n:
            for a in self.sample(rng, n - len(seen)):
                seen.setdefault(canonical_json(a), a)
        return list(seen.values())[:n]

    def max_arch(self) -> Architecture:
        """The largest network: max resolution, depth, kernel and expand everywhere."""
        return self._extreme(max)

    def min_arch(self) -> Architecture:
        """The smallest network: min resolution, depth, kernel and expand everywhere."""
        return self._extreme(min)

    def _extreme(self, pick) -> Architecture:
        return self.parse({label: pick(c) for label, c in self._decisions.items()})

    # Networks --------------------------------------------------------------------------
    def build_supernet(self) -> Any:
        """The weight-sharing supernet (:class:`~search.spaces.ofa_mbv3.network.OFAMobileNetV3`),
        freshly initialised, with the largest architecture active."""
        from search.spaces.ofa_mbv3.network import OFAMobileNetV3  # the network imports this

        return OFAMobileNetV3(self)

    def build_subnet(self, arch: str | Mapping[str, Any]) -> Any:
        """Freshly initialised standalone network of one architecture (plain torch layers)."""
        from search.spaces.ofa_mbv3.network import OFAMobileNetV3Subnet

        return OFAMobileNetV3Subnet(self, self.parse(arch))

    def total_stride(self) -> int:
        """Downsampling from the input to the final feature map."""
        return self.first_stride * math.prod(self.strides)
