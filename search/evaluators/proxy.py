"""Proxy scores of the built network: parameter and FLOP / MAC counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search.evaluators.base import Metrics, Target
from search.evaluators.sizes import Sized, network_size
from search.objectives import Constraint, Objective


class ProxyEvaluator:
    """Proxy scores of the built network: parameters (millions) and FLOPs / MACs (millions).

    FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass of a
    ``(1, 3, H, W)`` input (a multiply-add counts as 2 FLOPs; ``macs_m`` is half of it).

    Args:
        space: the search space; ``space.build_subnet(arch)`` builds the network.
        input_size: (H, W) of the input image.
    """

    kind = "proxy"
    METRICS = ("params_m", "flops_m", "macs_m")

    def __init__(self, space: Any, input_size: Sequence[int] = (32, 32)) -> None:
        if not hasattr(space, "build_subnet"):
            raise TypeError(f"proxy scores need a space with build_subnet(arch), got {space!r}")
        self.model_builder = space.build_subnet
        self.input_size = tuple(int(s) for s in input_size)
        self.name = "proxy:params_flops"

    def check(self, objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> None:
        for o in [*objectives, *constraints]:
            if o.device is not None or o.metric not in self.METRICS:
                raise KeyError(
                    f"proxy evaluator cannot serve {o.key!r}; valid metrics: {list(self.METRICS)} "
                    "(no device)"
                )

    def network_sizes(self, targets: Sequence[Target]) -> dict[str, Sized]:
        """Per target, the size of the network it is counted on (where the space says)."""
        size = network_size(self)
        return {} if size is None else {t.key: (size, "the proxy's network") for t in targets}

    def settings(self, targets: Sequence[Target]) -> dict[str, Any]:
        keys = sorted(t.key for t in targets)
        return {"evaluator": self.name, "input_size": list(self.input_size), "keys": keys}

    def evaluate(self, arch: str, targets: Sequence[Target]) -> Metrics:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        model = self.model_builder(arch).eval()
        params = sum(p.numel() for p in model.parameters())
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(torch.zeros(1, 3, *self.input_size))
        flops = counter.get_total_flops()
        all_metrics = {"params_m": params / 1e6, "flops_m": flops / 1e6, "macs_m": flops / 2e6}
        return {t.key: all_metrics[t.metric] for t in targets}
