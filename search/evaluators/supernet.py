"""A trained supernet as the search's accuracy source (PRP-NAS: the supernet feeds the search).

Each candidate is scored from the shared weights of a ``train.py`` checkpoint: the sub-network is
extracted, its BN statistics recalibrated on fixed training batches and its top-1 accuracy
measured on fixed validation batches (:class:`~search.evaluators.subnet.SubnetEvaluator`). The
archive keys these evaluations by a fingerprint of the weights and of the batches, so another
checkpoint or other data never shares an entry. Latency and energy come from the table or a
plugged-in hardware device, through :func:`supernet_evaluator`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from search.evaluators.base import Metrics, Target
from search.evaluators.combined import CombinedEvaluator
from search.evaluators.sizes import SIZE_KEYS, Sized
from search.evaluators.subnet import SubnetEvaluator, fingerprint
from search.evaluators.table import TableEvaluator
from search.objectives import Constraint, Objective


def load_supernet_weights(net: nn.Module, ckpt_path: str | Path) -> nn.Module:
    """Load the ``net.*`` weights of a ``train.py`` (Lightning) checkpoint into ``net``.

    The file is read with ``weights_only=True``: tensors and plain data only, never code, so a
    checkpoint from elsewhere cannot run anything.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: when the checkpoint holds no supernet or one of another shape.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"supernet checkpoint {str(path)!r} does not exist (a train.py run writes "
            "<run dir>/checkpoints/last.ckpt)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True).get("state_dict", {})
    weights = {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    if not weights:
        raise ValueError(f"{path} holds no supernet weights (no 'net.*' entries in state_dict)")
    try:
        net.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise ValueError(
            f"{path} holds a supernet of another shape than the space builds ({first}); pass "
            "the space the run trained (space.* in its config_resolved.yaml)"
        ) from None
    return net


class SupernetEvaluator:
    """Validation of ``acc_top1`` from a trained supernet's shared weights.

    Args:
        ckpt_path: a ``train.py`` checkpoint (``model=fairnas``, ``spos`` or ``prp``).
        space: the space the run trained (builds the supernet the weights load into).
        datamodule: gives the recalibration and validation batches (``datamodules.*``).
        recal_batches: training batches for each sub-network's BN recalibration.
        val_batches: validation batches scored (``None``: the whole valid split).
        seed: seed of the recalibration batches.
        device: where sub-networks are scored.
        metric: the metric name served.
    """

    kind = "validation"

    def __init__(
        self,
        ckpt_path: str | Path,
        space: Any,
        datamodule: Any,
        recal_batches: int | None = 10,
        val_batches: int | None = 20,
        seed: int = 0,
        device: str = "cpu",
        metric: str = "acc_top1",
    ) -> None:
        self.ckpt_path, self.space, self.metric = str(ckpt_path), space, metric
        self.net = load_supernet_weights(space.build_supernet(), ckpt_path).to(device).eval()
        datamodule.setup("fit")
        self.subnets = SubnetEvaluator.from_datamodule(
            datamodule, recal_batches, val_batches, seed=seed, device=device
        )
        batches = [*self.subnets.recal_batches, *(x for x, _ in self.subnets.val_batches)]
        self.weights_key = fingerprint(self.net, batches)
        self.name = "validation:supernet"
        self._settings = {"recal_batches": recal_batches, "val_batches": val_batches, "seed": seed}

    def check(self, objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> None:
        for t in [*objectives, *constraints]:
            if t.metric != self.metric or t.device is not None:
                raise KeyError(
                    f"the supernet evaluator serves {self.metric!r} (top-1 % from the shared "
                    f"weights of {self.ckpt_path}), not {t.key!r}"
                )

    def settings(self, targets: Sequence[Target]) -> dict[str, Any]:
        return {
            "evaluator": self.name,
            "weights": self.weights_key,
            "keys": sorted(t.key for t in targets),
            **self._settings,
        }

    def evaluate(self, arch: str | Mapping[str, Any], targets: Sequence[Target]) -> Metrics:
        result = self.subnets.evaluate_one(self.net, arch)
        return {t.key: float(result["acc_top1"]) for t in targets}

    def network_sizes(self, targets: Sequence[Target]) -> dict[str, Sized]:
        """The trained supernet's size, for the one-network-size check."""
        if not all(hasattr(self.space, k) for k in SIZE_KEYS):
            return {}
        size = {k: getattr(self.space, k) for k in SIZE_KEYS}
        return {t.key: (size, f"the supernet {self.ckpt_path}") for t in targets}


def supernet_evaluator(
    ckpt_path: str | Path,
    space: Any,
    datamodule: Any,
    devices: Mapping[str, Any] | None = None,
    table_path: str | None = None,
    recal_batches: int | None = 10,
    val_batches: int | None = 20,
    seed: int = 0,
    device: str = "cpu",
) -> CombinedEvaluator:
    """Accuracy from the supernet, every other metric from the table or a plugged-in device
    (``hardware=lut``, ``cpu``, ...): what ``evaluator=supernet`` builds."""
    return CombinedEvaluator(
        [
            SupernetEvaluator(
                ckpt_path, space, datamodule, recal_batches, val_batches, seed=seed, device=device
            ),
            TableEvaluator(
                table_path,
                metric_columns={},
                devices=devices,
                model_builder=space.build_subnet,
                allow_size_mismatch=True,  # the supernet's size is checked across the parts
            ),
        ]
    )
