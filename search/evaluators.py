"""Evaluators behind one interface: the Intel system's evaluation manager (section 3).

An evaluator turns an architecture into named metrics. Three kinds exist:

* ``validation``: really measure. :class:`TableEvaluator` looks metrics up in the NAS-Bench-201
  table, or asks a :class:`hardware.base.Device` for the devices it is given;
  :class:`FunctionEvaluator` calls a user's own function.
* ``predictor``: :class:`PredictorEvaluator`, weak predictors (``search.predictors``) trained
  on validated evaluations.
* ``proxy``: :class:`ProxyEvaluator`, parameter and FLOP counts of the built network.

Every evaluator has a ``name`` (``<kind>:<what>``, recorded with each result) and
``settings(targets)``: everything that makes two evaluations of one architecture the same, which
the archive uses to never validate an architecture twice.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from search.objectives import Constraint, Objective

Metrics = dict[str, float | None]
Target = Objective | Constraint  # anything with metric, device and key


@runtime_checkable
class Evaluator(Protocol):
    """What the search needs from an evaluator."""

    name: str

    def settings(self, targets: Sequence[Target]) -> dict[str, Any]:
        """Everything that determines the metrics ``targets`` of an architecture."""
        ...

    def check(self, objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> None:
        """Raise a clear error for metrics, devices or bounds this evaluator cannot serve."""
        ...

    def evaluate(self, arch: str, targets: Sequence[Target]) -> Metrics:
        """Metrics of ``arch`` by target key; ``None`` where a value cannot be measured."""
        ...


def _clean(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value


class TableEvaluator:
    """Validation by benchmark-table lookup (NAS-Bench-201), with devices able to plug in.

    Args:
        table_path: ``None`` for the bundled table, else a CSV or official ``.pth`` file.
        metric_columns: device-independent metric name -> table column, e.g.
            ``{acc_top1: acc_cifar10_test}``. A metric on a device (``latency_ms`` on
            ``edgegpu``) reads column ``latency_ms_edgegpu``.
        devices: device name -> object with ``metrics(arch, model) -> dict`` (the
            ``hardware.base.Device`` protocol); metrics on these devices are measured there
            instead of read from the table.
        model_builder: builds the network a device runs (e.g. ``space.build_subnet``); devices
            that only need the arch string get ``model=None`` when it is not given.
        exclude_degenerate: leave rows at the minimum of an accuracy column (NAS-Bench-201's
            10% cells, where nothing reaches the output) out of :meth:`true_front` only.
    """

    kind = "validation"

    def __init__(
        self,
        table_path: str | None = None,
        metric_columns: Mapping[str, str] | None = None,
        devices: Mapping[str, Any] | None = None,
        model_builder: Callable[[str], Any] | None = None,
        exclude_degenerate: bool = True,
    ) -> None:
        from search.benchmarks import NB201Table

        self.table = NB201Table.load(table_path)
        self.metric_columns = dict(metric_columns or {})
        self.devices = dict(devices or {})
        self.model_builder = model_builder
        self.exclude_degenerate = exclude_degenerate
        # the devices measuring metrics are part of what produced a result
        self.name = "+".join(["validation:nb201_table", *(f"device:{d}" for d in self.devices)])
        self._columns = [c for c in self.table.columns if c not in ("nb201_index", "arch_str")]
        for metric, column in self.metric_columns.items():
            if column not in self._columns:
                raise KeyError(
                    f"metric_columns maps {metric!r} to unknown column {column!r}; "
                    f"columns: {self._columns}"
                )

    # Names -------------------------------------------------------------------------------
    def metrics_without_device(self) -> list[str]:
        return sorted(set(self.metric_columns) | set(self._columns))

    def devices_of(self, metric: str) -> list[str]:
        """Devices with a ``<metric>_<device>`` column, or plugged in."""
        found = {c.removeprefix(metric + "_") for c in self._columns if c.startswith(metric + "_")}
        return sorted(found | set(self.devices))

    def source(self, metric: str, device: str | None) -> str:
        """Where ``metric`` (on ``device``) comes from: a table column or ``device:<name>``.

        Raises:
            KeyError: naming the unknown metric / device and the valid ones.
        """
        if device is None:
            if metric in self.metric_columns:
                return self.metric_columns[metric]
            if metric in self._columns:
                return metric
            raise KeyError(
                f"unknown metric {metric!r} without a device; valid metrics: "
                f"{self.metrics_without_device()} (latency and energy need a device)"
            )
        if device in self.devices:
            return f"device:{device}"
        column = f"{metric}_{device}"
        if column in self._columns:
            return column
        devices = self.devices_of(metric)
        if not devices:
            metrics = sorted({c.rsplit("_", 1)[0] for c in self._columns if c.count("_") >= 2})
            raise KeyError(
                f"unknown metric {metric!r} on device {device!r}; metrics measured per device "
                f"look like {metrics[:8]}"
            )
        raise KeyError(f"unknown device {device!r} for metric {metric!r}; valid devices: {devices}")

    # Interface ---------------------------------------------------------------------------
    def check(self, objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> None:
        for o in [*objectives, *constraints]:
            self.source(o.metric, o.device)
        for c in constraints:
            lo, hi = self.bounds(c)
            if (c.op == "<=" and lo > c.value) or (c.op == ">=" and hi < c.value):
                raise ValueError(
                    f"constraint {c} is infeasible: {c.key} ranges over [{lo:g}, {hi:g}] "
                    f"in the table ({self.table.source})"
                )

    def settings(self, targets: Sequence[Target]) -> dict[str, Any]:
        sources: dict[str, Any] = {}
        for t in targets:
            src = self.source(t.metric, t.device)
            if src.startswith("device:"):
                dev = self.devices[t.device]
                sources[t.key] = {
                    "device": t.device,
                    "class": f"{type(dev).__module__}.{type(dev).__qualname__}",
                    "settings": getattr(dev, "settings", None),
                }
            else:
                sources[t.key] = src
        return {"evaluator": self.name, "table": self.table.source, "sources": sources}

    def evaluate(self, arch: str, targets: Sequence[Target]) -> Metrics:
        out: Metrics = {}
        row = self.table.row(arch)
        model = None
        for t in targets:
            src = self.source(t.metric, t.device)
            if src.startswith("device:"):
                if model is None and self.model_builder is not None:
                    model = self.model_builder(arch)
                out[t.key] = _clean(self.devices[t.device].metrics(arch, model).get(t.metric))
            else:
                out[t.key] = _clean(self.table.frame.at[row, src])
        return out

    # Ground truth ------------------------------------------------------------------------
    def bounds(self, target: Target) -> tuple[float, float]:
        """Range of a table metric (for constraint feasibility)."""
        src = self.source(target.metric, target.device)
        if src.startswith("device:"):
            return -np.inf, np.inf
        col = self.table.frame[src].to_numpy(float)
        return float(np.nanmin(col)), float(np.nanmax(col))

    def true_values(self, targets: Sequence[Target]) -> tuple[list[str], np.ndarray]:
        """Every table row's values of ``targets`` (rows with a NaN and degenerate rows dropped)."""
        cols = []
        for t in targets:
            src = self.source(t.metric, t.device)
            if src.startswith("device:"):
                raise ValueError(f"{t.key} is measured on a device: the table has no ground truth")
            cols.append(src)
        values = self.table.frame[cols].to_numpy(float)
        keep = ~np.isnan(values).any(1)
        if self.exclude_degenerate:
            for j, col in enumerate(cols):
                if col.startswith("acc_"):
                    keep &= values[:, j] > np.nanmin(values[:, j])
        return list(self.table.frame["arch_str"].to_numpy()[keep]), values[keep]


class FunctionEvaluator:
    """Validation by a user's function ``fn(arch) -> {metric: value}``.

    Args:
        fn: returns at least the metrics the search asks for (``None``/NaN = unmeasurable).
        name: recorded with each result as ``validation:<name>``.
        settings: what determines the function's results (version, dataset, device
            settings); two searches with equal settings share archived evaluations.
    """

    kind = "validation"

    def __init__(
        self,
        fn: Callable[[str], Mapping[str, Any]],
        name: str = "function",
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.fn = fn
        self.name = f"validation:{name}"
        self._settings = dict(settings or {})

    def check(self, objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> None:
        return None  # what fn returns is checked on its first result

    def settings(self, targets: Sequence[Target]) -> dict[str, Any]:
        return {"evaluator": self.name, "keys": sorted(t.key for t in targets), **self._settings}

    def evaluate(self, arch: str, targets: Sequence[Target]) -> Metrics:
        keys = [t.key for t in targets]
        result = self.fn(arch)
        missing = [k for k in keys if k not in result]
        if missing:
            raise KeyError(
                f"evaluation function returned {sorted(result)} for {arch!r}, missing {missing}"
            )
        return {k: _clean(result[k]) for k in keys}


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


class CombinedEvaluator:
    """Several evaluators as one: each metric comes from the first part that serves it.

    Args:
        parts: evaluators in order of preference (e.g. a table for accuracy, then proxies).
    """

    def __init__(self, parts: Sequence[Evaluator]) -> None:
        if not parts:
            raise ValueError("a combined evaluator needs at least one part")
        self.parts = list(parts)
        self.name = "+".join(p.name for p in self.parts)
        self.kind = "+".join(sorted({getattr(p, "kind", "validation") for p in self.parts}))

    def part_of(self, target: Target) -> Evaluator:
        errors = []
        for part in self.parts:
            try:
                _check_one(part, target)
            except (KeyError, ValueError) as err:
                errors.append(f"{part.name}: {err}")
                continue
            return part
        raise KeyError(f"no evaluator serves {target.key!r}: " + "; ".join(errors))

    def check(self, objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> None:
        for o in objectives:
            self.part_of(o)
        for c in constraints:
            self.part_of(c).check([], [c])

    def settings(self, targets: Sequence[Target]) -> dict[str, Any]:
        return {
            "evaluator": self.name,
            "parts": {t.key: self.part_of(t).settings([t]) for t in targets},
        }

    def evaluate(self, arch: str, targets: Sequence[Target]) -> Metrics:
        out: Metrics = {}
        for part in self.parts:
            mine = [t for t in targets if self.part_of(t) is part]
            if mine:
                out.update(part.evaluate(arch, mine))
        return out


def _check_one(part: Evaluator, target: Target) -> None:
    if isinstance(target, Constraint):
        part.check([], [target])
    else:
        part.check([target], [])


class PredictorEvaluator:
    """Weak predictors, one per metric, trained on validated evaluations (Intel section 4.3).

    Args:
        num_choices: choices per decision of the space (encoding layout).
        kinds: metric key -> predictor kind (``ridge``, ``svr``, ``mlp``); keys not listed use
            ``default``. A key may also be a metric without its device (``latency_ms``).
        default: predictor kind for unlisted metrics.
        seed: seed of the predictors.
        target: the targets' transform (``standard`` or ``power``, see
            :func:`search.predictors.make_predictor`).
    """

    kind = "predictor"

    def __init__(
        self,
        num_choices: Sequence[int],
        kinds: Mapping[str, str] | None = None,
        default: str = "ridge",
        seed: int = 0,
        target: str = "standard",
    ) -> None:
        self.num_choices = list(num_choices)
        self.target = target
        self.kinds = dict(kinds or {})
        self.default = default
        self.seed = seed
        self.models: dict[str, Any] = {}
        self.name = "predictor"

    def kind_of(self, key: str) -> str:
        if key in self.kinds:
            return self.kinds[key]
        for metric, kind in self.kinds.items():
            if key.startswith(metric + "_"):
                return kind
        return self.default

    def fit(
        self, X: np.ndarray, targets: Mapping[str, np.ndarray], cv_folds: int = 0
    ) -> PredictorEvaluator:
        """Fit one predictor per metric on encodings ``X``; NaN targets are left out.

        With ``cv_folds`` > 1, ``residual_std[key]`` holds the standard deviation of the
        cross-validated residuals: how far off a prediction for an unseen architecture is.
        """
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.model_selection import KFold, cross_val_predict

        from search.predictors import make_predictor

        X = np.asarray(X, dtype=np.int64)
        self.residual_std: dict[str, float] = {}
        for key, y in targets.items():
            y = np.asarray(y, dtype=float)
            ok = ~np.isnan(y)
            if ok.sum() < 3:
                raise ValueError(f"need >= 3 measured values of {key!r} to fit, got {ok.sum()}")
            model = make_predictor(
                self.kind_of(key), self.num_choices, seed=self.seed, target=self.target
            )
            with warnings.catch_warnings():  # a GP's kernel at its bounds on few samples
                warnings.simplefilter("ignore", ConvergenceWarning)
                if cv_folds > 1 and ok.sum() >= 2 * cv_folds:
                    folds = KFold(cv_folds, shuffle=True, random_state=self.seed)
                    cv = cross_val_predict(model, X[ok], y[ok], cv=folds)
                    self.residual_std[key] = float(np.std(y[ok] - cv))
                self.models[key] = model.fit(X[ok], y[ok])
        self.name = "predictor:" + ",".join(f"{k}={self.kind_of(k)}" for k in self.models)
        return self

    def predict(self, X: np.ndarray, keys: Sequence[str]) -> np.ndarray:
        """(n, len(keys)) predicted metrics of encodings ``X``."""
        missing = [k for k in keys if k not in self.models]
        if missing:
            raise KeyError(f"no fitted predictor for {missing}; fitted: {sorted(self.models)}")
        X = np.asarray(X, dtype=np.int64)
        return np.stack([self.models[k].predict(X) for k in keys], axis=1)

    def predict_std(self, X: np.ndarray, keys: Sequence[str]) -> np.ndarray:
        """(n, len(keys)) standard deviation of each prediction: the posterior's for a Gaussian
        process (small next to validated architectures, large far from them), else the constant
        cross-validated ``residual_std`` (0 when the predictors were fitted without
        ``cv_folds``)."""
        X = np.asarray(X, dtype=np.int64)
        out = np.zeros((len(X), len(keys)))
        for j, key in enumerate(keys):
            model = self.models[key]
            encode, target = model[:-1], model[-1]  # one-hot, then the transformed regressor
            regressor = target.regressor_
            if not hasattr(regressor, "kernel_"):
                out[:, j] = self.residual_std.get(key, 0.0)
                continue
            mu, sd = regressor.predict(encode.transform(X), return_std=True)
            # one standard deviation either side, mapped back through the target transform
            inverse = target.transformer_.inverse_transform
            hi, lo = inverse((mu + sd)[:, None])[:, 0], inverse((mu - sd)[:, None])[:, 0]
            out[:, j] = (hi - lo) / 2
        return out
