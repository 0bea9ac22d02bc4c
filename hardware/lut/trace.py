"""Op tracing: the op calls of one forward pass, as signatures with one replayable example each.

Every leaf module (a module without children) of the network gets a forward hook; one forward
pass records each call's *op signature* (module class, its constructor settings, input and
output shapes, dtypes and memory formats) in call order. Tensor functions called outside leaf
modules (a residual addition, ``torch.zeros_like``, ``flatten``) are ops too, recorded through
a ``TorchFunctionMode`` (``functional=False`` leaves them to the LUT's fixed part).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode


def _describe(value: Any) -> str:
    """Shape/dtype/layout description of a forward argument or output (no values)."""
    if isinstance(value, torch.Tensor):
        shape = "x".join(map(str, value.shape)) or "scalar"
        dtype = str(value.dtype).removeprefix("torch.")
        cl = (
            ":cl"
            if value.dim() == 4
            and value.is_contiguous(memory_format=torch.channels_last)
            and not value.is_contiguous()
            else ""
        )
        return f"{shape}:{dtype}{cl}"
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(_describe(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={_describe(v)}" for k, v in sorted(value.items())) + "}"
    return repr(value)


def op_signature(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> str:
    """Signature of one leaf-op call: class, constructor settings, input and output shapes."""
    head = f"{type(module).__name__}({module.extra_repr()})"
    inputs = _describe(tuple(args)) + (_describe(kwargs) if kwargs else "")
    return f"{head}|in={inputs}|out={_describe(output)}"


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_clone(v) for v in value)
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


class OpTrace:
    """The op calls of one forward pass: signatures in call order and one replayable example each.

    An example is ``(op, args, kwargs)`` where ``op`` is the leaf module or the tensor function.
    """

    def __init__(self, signatures: list[str], examples: dict[str, tuple[Any, tuple, dict]]):
        self.signatures = signatures
        self.examples = examples

    @property
    def counts(self) -> Counter:
        """How often each signature is called in one forward pass."""
        return Counter(self.signatures)


def function_signature(func: Any, args: tuple, kwargs: dict, output: Any) -> str:
    """Signature of a tensor function called outside leaf modules (``fn:`` prefix)."""
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    inputs = _describe(tuple(args)) + (_describe(kwargs) if kwargs else "")
    return f"fn:{name}|in={inputs}|out={_describe(output)}"


class _FunctionalOps(TorchFunctionMode):
    """Sees every tensor function; reports those called outside leaf modules (depth 0)."""

    def __init__(self, on_call) -> None:
        super().__init__()
        self.on_call = on_call
        self.depth = 0  # > 0 while a leaf module runs: its internals are timed with it

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        # Only calls that produce a tensor are work (not .shape, .dim(), ...).
        if self.depth == 0 and isinstance(out, torch.Tensor):
            self.on_call(func, args, kwargs, out)
        return out


def trace_ops(
    model: nn.Module, inputs: torch.Tensor | Sequence[torch.Tensor], functional: bool = True
) -> OpTrace:
    """Run one forward pass with hooks on every leaf module and record the op calls.

    Args:
        model: any network, already on the target device and in eval mode.
        inputs: its input tensor (or tuple of tensors).
        functional: also record tensor functions called outside leaf modules (the additions
            of a residual or a NAS-Bench-201 cell, ``torch.zeros_like``, ``flatten``) through a
            ``TorchFunctionMode``; otherwise they fall into the LUT's fixed part.
    """
    args = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    signatures: list[str] = []
    examples: dict[str, tuple[Any, tuple, dict]] = {}

    def record(sig: str, op: Any, a: tuple, kw: dict) -> None:
        signatures.append(sig)
        if sig not in examples:
            # In-place ops (ReLU(inplace=True)) have overwritten their input by now; its shape,
            # dtype and layout are unchanged, which is all the timing replay needs.
            examples[sig] = (op, _clone(a), _clone(kw))

    mode = _FunctionalOps(lambda f, a, kw, out: record(function_signature(f, a, kw, out), f, a, kw))

    def pre_hook(module: nn.Module, a: tuple, kw: dict) -> None:
        mode.depth += 1

    def hook(module: nn.Module, a: tuple, kw: dict, out: Any) -> None:
        record(op_signature(module, a, kw, out), module, a, kw)
        mode.depth -= 1

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    if not leaves:
        raise ValueError(f"{type(model).__name__} has no modules to hook")
    handles = [m.register_forward_pre_hook(pre_hook, with_kwargs=True) for m in leaves]
    handles += [m.register_forward_hook(hook, with_kwargs=True) for m in leaves]
    try:
        with torch.inference_mode(), mode if functional else contextlib.nullcontext():
            model(*args)
    finally:
        for h in handles:
            h.remove()
    return OpTrace(signatures, examples)
