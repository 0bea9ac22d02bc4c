"""Registry of search spaces, in the style of timm's model registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_SPACES: dict[str, Callable[..., Any]] = {}


def register_space(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register a search-space builder under its function name."""
    if fn.__name__ in _SPACES:
        raise ValueError(f"search space {fn.__name__!r} is already registered")
    _SPACES[fn.__name__] = fn
    return fn


def list_spaces() -> list[str]:
    """Names of all registered search spaces, sorted."""
    return sorted(_SPACES)


def create_space(name: str, **kwargs: Any) -> Any:
    """Build the search space registered as ``name`` with builder keyword arguments."""
    if name not in _SPACES:
        raise KeyError(f"unknown search space {name!r}; registered spaces: {list_spaces()}")
    return _SPACES[name](**kwargs)


# Import the families so that their builders register themselves.
from search.spaces import nb201, ofa_mbv3  # noqa: E402, F401
from search.spaces.base import (  # noqa: E402
    Architecture,
    DecisionSpace,
    SearchSpace,
    Supernet,
    arch_id,
    canonical_json,
)

__all__ = [
    "Architecture",
    "DecisionSpace",
    "SearchSpace",
    "Supernet",
    "arch_id",
    "canonical_json",
    "create_space",
    "list_spaces",
    "register_space",
]
