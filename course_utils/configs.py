"""Model and training configs: built from a dict or defaults, and checked field by field (shared).

Every config of the course is a dataclass (``GPTConfig``, ``GANConfig``, a
training recipe...). :func:`make_config` builds one from ``None`` (the
defaults), a dict (a checkpoint card's JSON) or an instance, with keyword
overrides; its ``__post_init__`` calls the ``require_*`` checks, so a bad value
is refused with one line naming the field, the value and what is allowed,
before any tensor is made. Shared: the models and recipes of notebooks 02 to 06
use it. No topic module is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields, replace
from typing import Any


def make_config(cls: type, config: Any, overrides: Mapping[str, Any]) -> Any:
    """A ``cls`` dataclass from None (defaults), a dict, or an instance, with ``overrides`` applied.

    Lists in a dict (JSON has no tuples) become tuples where the default is a tuple.
    """
    if config is None:
        config = cls()
    elif isinstance(config, Mapping):
        config = cls(**config)
    elif not isinstance(config, cls):
        raise TypeError(f"config must be a {cls.__name__} or a dict, got {type(config).__name__}")
    fields = {**asdict(config), **overrides}
    defaults = asdict(cls())
    fields = {k: tuple(v) if isinstance(defaults.get(k), tuple) and isinstance(v, list) else v
              for k, v in fields.items()}
    return cls(**fields)


def require_positive(config: Any, *names: str, allow_zero: tuple[str, ...] = ()) -> None:
    """Raise a clear ``ValueError`` if a config field is not a positive int (or zero, for ``allow_zero``)."""
    for name in names:
        value, low = getattr(config, name), 0 if name in allow_zero else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{type(config).__name__}.{name} must be an int >= {low}, got {value!r}")


def require_multiple(config: Any, name: str, of: str) -> None:
    """Raise a clear ``ValueError`` unless field ``name`` is a multiple of field ``of`` (width and attention heads)."""
    value, divisor = getattr(config, name), getattr(config, of)
    if value % divisor:
        raise ValueError(f"{type(config).__name__}.{name}={value} must be a multiple of {of}={divisor}")


def require_rate(config: Any, *names: str) -> None:
    """Raise a clear ``ValueError`` unless each field is a rate in [0, 1) (dropout)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ValueError(f"{type(config).__name__}.{name} must be in [0, 1), got {value!r}")


def choose_recipe(recipes: Mapping[str, Any], recipe: Any, **overrides: Any) -> Any:
    """The recipe named ``recipe`` in ``recipes`` (or ``recipe`` itself, an instance), with ``overrides`` replaced.

    The one way every topic picks its training settings: ``RECIPES[profile()]`` in a notebook,
    ``--recipe NAME`` on the command line. An unknown name or field is refused in one line.
    """
    if isinstance(recipe, str):
        if recipe not in recipes:
            raise ValueError(f"unknown recipe {recipe!r}; known: {', '.join(recipes)}")
        recipe = recipes[recipe]
    unknown = sorted(set(overrides) - {f.name for f in fields(recipe)})
    if unknown:
        raise ValueError(f"{type(recipe).__name__} has no setting {', '.join(unknown)}; "
                         f"known: {', '.join(f.name for f in fields(recipe))}")
    return replace(recipe, **overrides)
