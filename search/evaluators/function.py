"""Validation by a user's own function ``fn(arch) -> {metric: value}``, keyed by its code."""

from __future__ import annotations

import enum
import functools
import hashlib
import inspect
import pathlib
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from search.evaluators.base import Metrics, Target, clean
from search.objectives import Constraint, Objective


class FunctionEvaluator:
    """Validation by a user's function ``fn(arch) -> {metric: value}``.

    The archive shares an evaluation between searches whose evaluator settings are equal. Here
    they are the function's :func:`fingerprint` (its qualified name and a hash of its code,
    constants, defaults and the plain values it closes over), the metric keys and the user's
    ``settings``: two different functions (or one function closing over two checkpoint paths)
    never share entries, the same function does, also in another process. What the
    fingerprint cannot see, give in ``settings``: objects that are not plain data (a loaded
    model, a dataset) are identified by their type only, and data files by nothing.

    Args:
        fn: returns at least the metrics the search asks for (``None``/NaN = unmeasurable).
        name: recorded with each result as ``validation:<name>``.
        settings: what else determines the function's results (model version, dataset,
            device settings).
        fingerprint: key entries by the function's code too; ``False`` shares entries between
            any functions with equal ``name`` and ``settings`` (e.g. across a refactor that
            does not change results: the user vouches for it).
    """

    kind = "validation"

    def __init__(
        self,
        fn: Callable[[str], Mapping[str, Any]],
        name: str = "function",
        settings: Mapping[str, Any] | None = None,
        fingerprint: bool = True,
    ) -> None:
        self.fn = fn
        self.name = f"validation:{name}"
        self._settings = dict(settings or {})
        self._fingerprint = function_fingerprint(fn) if fingerprint else None

    def check(self, objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> None:
        return None  # what fn returns is checked on its first result

    def settings(self, targets: Sequence[Target]) -> dict[str, Any]:
        out = {"evaluator": self.name, "keys": sorted(t.key for t in targets)}
        if self._fingerprint is not None:
            out["function"] = self._fingerprint
        return {**out, **self._settings}

    def evaluate(self, arch: str, targets: Sequence[Target]) -> Metrics:
        keys = [t.key for t in targets]
        result = self.fn(arch)
        missing = [k for k in keys if k not in result]
        if missing:
            raise KeyError(
                f"evaluation function returned {sorted(result)} for {arch!r}, missing {missing}"
            )
        return {k: clean(result[k]) for k in keys}


_PLAIN = (type(None), bool, int, float, complex, str, bytes)


def function_fingerprint(fn: Callable[..., Any]) -> dict[str, str]:
    """What produced a function's values, stable across processes: ``{"function": qualified
    name, "code": hash}``. The hash covers the bytecode, constants and names of the function
    and of the functions it closes over or calls by global name (recursively), its defaults,
    ``functools.partial`` arguments, a callable object's attributes, and the immutable plain
    values (numbers, strings, paths, tuples of them) it closes over or reads as globals. Other
    values count by their type only; a different Python version counts as different code."""
    digest = hashlib.sha1()
    _feed(digest, fn, set(), 0)
    target = fn.func if isinstance(fn, functools.partial) else fn
    qualname = getattr(target, "__qualname__", type(target).__qualname__)
    module = getattr(target, "__module__", None) or type(target).__module__
    return {"function": f"{module}.{qualname}", "code": digest.hexdigest()[:16]}


def _feed(digest: Any, obj: Any, visited: set[int], depth: int) -> None:
    """Add ``obj`` to ``digest``: code by content, plain values by value, others by type."""
    if depth > 20 or id(obj) in visited:
        digest.update(b"<seen>")
        return
    if isinstance(obj, _PLAIN):
        digest.update(f"{type(obj).__name__}:{obj!r};".encode())
    elif isinstance(obj, (pathlib.PurePath, enum.Enum)):
        digest.update(f"{type(obj).__name__}:{obj!s};".encode())
    elif isinstance(obj, (tuple, frozenset)):
        digest.update(f"{type(obj).__name__}(".encode())
        items = sorted(obj, key=repr) if isinstance(obj, frozenset) else obj
        for item in items:
            _feed(digest, item, visited, depth + 1)
        digest.update(b")")
    elif isinstance(obj, types.CodeType):
        digest.update(obj.co_code)
        digest.update(repr(obj.co_names).encode())
        for const in obj.co_consts:
            _feed(digest, const, visited, depth + 1)
    elif isinstance(obj, functools.partial):
        visited.add(id(obj))
        _feed(digest, obj.func, visited, depth + 1)
        _feed(digest, tuple(obj.args), visited, depth + 1)
        _feed(digest, tuple(sorted(obj.keywords.items())), visited, depth + 1)
    elif isinstance(obj, types.MethodType):
        visited.add(id(obj))
        _feed(digest, obj.__func__, visited, depth + 1)
        _feed_attributes(digest, obj.__self__, visited, depth)
    elif isinstance(obj, types.FunctionType):
        visited.add(id(obj))
        digest.update(f"def {obj.__module__}.{obj.__qualname__};".encode())
        _feed(digest, obj.__code__, visited, depth + 1)
        _feed(digest, obj.__defaults__, visited, depth + 1)
        _feed(digest, tuple(sorted((obj.__kwdefaults__ or {}).items())), visited, depth + 1)
        for cell in obj.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:  # a cell not yet filled
                value = None
            _feed(digest, value, visited, depth + 1)
        for name in _global_names(obj.__code__):  # globals it reads: constants and helpers
            if name in obj.__globals__:
                value = obj.__globals__[name]
                if isinstance(value, (*_PLAIN, pathlib.PurePath, tuple, types.FunctionType)):
                    digest.update(f"global {name}=".encode())
                    _feed(digest, value, visited, depth + 1)
    elif isinstance(obj, (types.ModuleType, type)):
        digest.update(f"{type(obj).__name__}:{getattr(obj, '__name__', '')};".encode())
    elif callable(obj) and not inspect.isbuiltin(obj):  # a callable object: its class, state
        visited.add(id(obj))
        call = next(
            (c.__dict__["__call__"] for c in type(obj).__mro__ if "__call__" in c.__dict__), None
        )
        if isinstance(call, types.FunctionType):
            _feed(digest, call, visited, depth + 1)
        _feed_attributes(digest, obj, visited, depth)
    else:  # not plain data (a model, a list that changes as the search runs): its type only
        kind = type(obj)
        digest.update(f"<{kind.__module__}.{kind.__qualname__}>".encode())


def _feed_attributes(digest: Any, obj: Any, visited: set[int], depth: int) -> None:
    kind = type(obj)
    digest.update(f"<{kind.__module__}.{kind.__qualname__}>".encode())
    for key, value in sorted(getattr(obj, "__dict__", {}).items()):
        digest.update(f".{key}=".encode())
        _feed(digest, value, visited, depth + 1)


def _global_names(code: types.CodeType) -> list[str]:
    """Global names a code object (and the code nested in it) may read."""
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.extend(_global_names(const))
    return sorted(set(names))
