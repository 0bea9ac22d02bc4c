"""Small stand-ins for the runtime tests: an elastic toy supernet, a fake clock and fake load.

The toy supernet follows the contract of the real one (``OFAMobileNetV3``): ``set_active``,
``bn_state`` (the active slices, keyed by state_dict names), ``load_bn_state`` (into the leading
slices) and ``extract_subnet`` (plain layers, same module names, weights cloned). The tests
here check the toy itself keeps that contract, so the runtime tests built on it mean something.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hardware.runtime.family import Family, Level

WIDTHS = (2, 4, 8)
DEPTHS = (1, 2)


def toy_arch_id(arch: Mapping[str, Any]) -> str:
    return f"w{arch['width']}d{arch['depth']}"


class ToySubnet(nn.Module):
    """The standalone network of one toy path (plain layers, supernet names)."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width)
        self.depth = depth
        if depth == 2:
            self.conv2, self.bn2 = nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        if self.depth == 2:
            h = F.relu(self.bn2(self.conv2(h)))
        return self.fc(h.mean((2, 3)))


class ToyElastic(nn.Module):
    """An elastic-width, elastic-depth toy supernet with the runtime's switch interface."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        w = max(WIDTHS)
        self.conv1, self.bn1 = nn.Conv2d(3, w, 3, padding=1), nn.BatchNorm2d(w)
        self.conv2, self.bn2 = nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w)
        self.fc = nn.Linear(w, 4)
        self.arch = {"width": w, "depth": 2}

    @property
    def active_arch(self) -> dict[str, Any]:
        return dict(self.arch)

    def set_active(self, arch: Mapping[str, Any]) -> None:
        if arch["width"] not in WIDTHS or arch["depth"] not in DEPTHS:
            raise ValueError(f"bad toy arch {arch}")
        self.arch = {"width": arch["width"], "depth": arch["depth"]}

    def _bns(self) -> list[str]:
        return ["bn1"] + (["bn2"] if self.arch["depth"] == 2 else [])

    def bn_state(self) -> dict[str, torch.Tensor]:
        w = self.arch["width"]
        return {
            f"{bn}.{stat}": getattr(getattr(self, bn), stat)[:w].clone()
            for bn in self._bns()
            for stat in ("running_mean", "running_var")
        }

    def load_bn_state(self, state: Mapping[str, torch.Tensor]) -> None:
        for key, value in state.items():
            buf = self.get_buffer(key)
            buf[: value.shape[0]].copy_(value)

    def _bn(self, bn: nn.BatchNorm2d, h: torch.Tensor, w: int) -> torch.Tensor:
        return F.batch_norm(
            h,
            bn.running_mean[:w],
            bn.running_var[:w],
            bn.weight[:w],
            bn.bias[:w],
            self.training,
            bn.momentum,
            bn.eps,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.arch["width"]
        h = F.relu(
            self._bn(self.bn1, F.conv2d(x, self.conv1.weight[:w], self.conv1.bias[:w], 1, 1), w)
        )
        if self.arch["depth"] == 2:
            h2 = F.conv2d(h, self.conv2.weight[:w, :w], self.conv2.bias[:w], 1, 1)
            h = F.relu(self._bn(self.bn2, h2, w))
        return F.linear(h.mean((2, 3)), self.fc.weight[:, :w], self.fc.bias)

    def extract_subnet(self, arch: Mapping[str, Any]) -> ToySubnet:
        w, d = arch["width"], arch["depth"]
        sub = ToySubnet(w, d)
        with torch.no_grad():
            for name in ("conv1", "bn1", "conv2", "bn2") if d == 2 else ("conv1", "bn1"):
                src, dst = getattr(self, name), getattr(sub, name)
                for key, t in dst.state_dict().items():
                    s = src.state_dict()[key]
                    if s.dim() == 0:
                        t.copy_(s)
                    elif s.dim() == 1:
                        t.copy_(s[:w])
                    else:
                        t.copy_(s[:w, : t.shape[1]])
            sub.fc.weight.copy_(self.fc.weight[:, :w])
            sub.fc.bias.copy_(self.fc.bias)
        return sub


def recalibrated_bn(net: nn.Module, batches: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """BN running stats of ``net`` recomputed on ``batches`` (cumulative average), as a dict."""
    net = copy.deepcopy(net)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        for x in batches:
            net(x)
    return {
        k: v.clone()
        for k, v in net.state_dict().items()
        if k.endswith(("running_mean", "running_var"))
    }


TOY_ARCHS = [{"width": 2, "depth": 1}, {"width": 4, "depth": 2}, {"width": 8, "depth": 2}]


def toy_family(
    net: ToyElastic,
    batches: Sequence[torch.Tensor],
    latencies: Sequence[float] = (2.0, 4.0, 6.0),
    accs: Sequence[float] = (60.0, 65.0, 70.0),
    processor: str = "cpu_1t",
) -> Family:
    """A family of the three toy archs with BN stats of their recalibrated extracted subnets."""
    levels, bn = [], {}
    for i, (arch, lat, acc) in enumerate(zip(TOY_ARCHS, latencies, accs, strict=True), start=1):
        aid = toy_arch_id(arch)
        levels.append(Level(i, dict(arch), aid, acc, lat))
        bn[aid] = recalibrated_bn(net.extract_subnet(arch), batches)
    return Family(path=None, space={"name": "toy"}, processors={processor: levels}, bn=bn)


class FakeClock:
    """A clock that only moves when told to (seconds)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class FakeLatencyModel:
    """A switchable "model" whose inference advances a fake clock by its level's latency
    times ``factor`` (the slowdown of the competing load), plus a scripted extra if given."""

    def __init__(self, clock: FakeClock, latency_ms: Mapping[str, float]) -> None:
        self.clock, self.latency_ms = clock, dict(latency_ms)
        self.factor = 1.0
        self.arch: dict[str, Any] | None = None
        self.bn_loaded: list[str] = []
        self.calls = 0

    def set_active(self, arch: Mapping[str, Any]) -> None:
        self.arch = dict(arch)

    def load_bn_state(self, state: Mapping[str, torch.Tensor]) -> None:
        self.bn_loaded.append(next(iter(state)))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.clock.advance(self.latency_ms[self.arch["id"]] * self.factor / 1e3)
        return torch.zeros(x.shape[0], 4)


class FakeLoad:
    """Records the worker count the replay asks for and slows the fake model accordingly."""

    def __init__(self, model: FakeLatencyModel | None = None, slowdown: float = 0.5) -> None:
        self.model, self.slowdown = model, slowdown
        self.workers, self.history, self.closed = 0, [], 0

    def set_workers(self, n: int) -> None:
        self.workers = n
        self.history.append(n)
        if self.model is not None:
            self.model.factor = 1.0 + self.slowdown * n

    def close(self) -> None:
        self.workers = 0
        self.closed += 1
        if self.model is not None:
            self.model.factor = 1.0


def fake_family(latencies: Sequence[float], accs: Sequence[float], processor="cpu_1t") -> Family:
    """A family of named fake levels ``L1..Ln`` (arch ``{"id": "L<k>"}``), one BN tensor each."""
    levels = [
        Level(i, {"id": f"L{i}"}, f"L{i}", float(a), float(lat))
        for i, (lat, a) in enumerate(zip(latencies, accs, strict=True), start=1)
    ]
    bn = {
        lv.arch_id: {f"{lv.arch_id}.running_mean": torch.full((2,), float(i))}
        for i, lv in enumerate(levels)
    }
    return Family(path=None, space={"name": "fake"}, processors={processor: levels}, bn=bn)


def test_toy_extracted_subnet_equals_active_supernet():
    net = ToyElastic().eval()
    x = torch.randn(3, 3, 8, 8)
    for arch in TOY_ARCHS:
        net.set_active(arch)
        with torch.no_grad():
            torch.testing.assert_close(
                net(x), net.extract_subnet(arch).eval()(x), rtol=0, atol=1e-6
            )


def test_toy_bn_state_round_trips_through_load_bn_state():
    net = ToyElastic()
    net.set_active({"width": 4, "depth": 2})
    state = {k: torch.rand_like(v) + 0.5 for k, v in net.bn_state().items()}
    net.load_bn_state(state)
    assert all(torch.equal(net.bn_state()[k], v) for k, v in state.items())
    assert torch.equal(net.bn1.running_mean[4:], torch.zeros(4))  # only the active slice moved
