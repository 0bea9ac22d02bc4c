"""Backbone features at every exit position, computed once: the frozen backbone's outputs do
not change while the exits train, so each epoch reads them instead of re-running it."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.utils.data import Dataset

from search.spaces.exits import MultiExitNetwork


class FeatureCache(Dataset):
    """Per sample: the block outputs at the exit positions, the final logits and the label.

    Items are ``(features, teacher_logits, label)`` with ``features`` a tuple in the network's
    ``positions`` order; the default collate stacks them into the batch that
    :class:`~lightning_modules.multi_exit.module.MultiExitModule` reads.

    Features are stored as ``dtype`` (float16 halves the memory; the exits see them upcast to
    float32). Cached features are those of the images as the loader gives them: random
    augmentation would be frozen at its first draw, so build caches from un-augmented loaders.
    """

    def __init__(
        self, features: list[torch.Tensor], teacher: torch.Tensor, targets: torch.Tensor
    ) -> None:
        n = len(targets)
        if any(len(f) != n for f in features) or len(teacher) != n:
            raise ValueError("features, teacher logits and targets must have one row per sample")
        self.features, self.teacher, self.targets = features, teacher, targets

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        net: MultiExitNetwork,
        batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
        dtype: torch.dtype = torch.float16,
    ) -> FeatureCache:
        """One backbone pass (eval mode) over ``batches``."""
        was_training = net.backbone.training
        net.backbone.eval()
        feats: list[list[torch.Tensor]] = [[] for _ in net.positions]
        teacher, targets = [], []
        for x, y in batches:
            fs, final = net.backbone_features(x)
            for store, f in zip(feats, fs, strict=True):
                store.append(f.to(dtype))
            teacher.append(final.float())
            targets.append(y)
        net.backbone.train(was_training)
        return cls([torch.cat(f) for f in feats], torch.cat(teacher), torch.cat(targets))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
        return tuple(f[i] for f in self.features), self.teacher[i], self.targets[i]

    @property
    def nbytes(self) -> int:
        return sum(f.numel() * f.element_size() for f in self.features)
