"""What the CPU and CUDA devices share: input shape, timing settings and recorded settings."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hardware.base import ModelBuilder, load_average


class MeasuredDevice:
    """Shared settings and result assembly of the CPU and CUDA devices."""

    backend = ""

    def __init__(
        self,
        name: str,
        batch_size: int,
        resolution: int,
        in_channels: int,
        warmup: int,
        min_repeats: int,
        max_repeats: int,
        round_size: int,
        rel_tol: float,
        max_seconds: float,
        min_time_s: float,
        stable_rounds: int,
        channels_last: bool,
        energy: bool,
        energy_window_s: float,
        space: ModelBuilder | None,
        seed: int,
    ) -> None:
        if batch_size < 1 or resolution < 1 or in_channels < 1:
            raise ValueError(
                f"batch_size, resolution and in_channels must be >= 1, got {batch_size}, "
                f"{resolution}, {in_channels}"
            )
        self.name = name
        self.batch_size, self.resolution, self.in_channels = batch_size, resolution, in_channels
        self.timing = dict(
            warmup=warmup,
            min_repeats=min_repeats,
            max_repeats=max_repeats,
            round_size=round_size,
            rel_tol=rel_tol,
            max_seconds=max_seconds,
            min_time_s=min_time_s,
            stable_rounds=stable_rounds,
        )
        self.channels_last = channels_last
        self.energy = energy
        self.energy_window_s = energy_window_s
        self.space = space
        self.seed = seed

    def example_input(self, device: torch.device) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed)
        shape = (self.batch_size, self.in_channels, self.resolution, self.resolution)
        x = torch.randn(shape, generator=g).to(device)
        return x.to(memory_format=torch.channels_last) if self.channels_last else x

    def prepare(self, model: nn.Module, device: torch.device) -> nn.Module:
        model = model.to(device).eval()
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def base_settings(self) -> dict[str, Any]:
        return {
            "device": self.name,
            "source": "measured",
            "backend": self.backend,
            "batch_size": self.batch_size,
            "resolution": self.resolution,
            "in_channels": self.in_channels,
            "dtype": "float32",
            "channels_last": self.channels_last,
            "torch": torch.__version__,
            "load_average": load_average(),
            **self.timing,
        }
