"""Typed config fields: one default, one line of help and one check per key, and the walk that checks them.

A config class is a dataclass whose fields come from :func:`opt`. :func:`validate` walks a filled-in
config (nested dataclasses included), runs each field's check and each class's ``cross_check`` hook,
and raises one :class:`~marl_torchrl.registry.ConfigError` naming the full key. Nothing here imports
torch: a bad config is refused before any heavy import.

>>> from dataclasses import dataclass
>>> @dataclass
... class Opt:
...     lr: float = opt(5e-4, "learning rate", positive)
...     kind: str = opt("adam", "optimiser", one_of("adam", "rmsprop"))
>>> validate(Opt(), "algorithm")
>>> validate(Opt(lr=-1.0), "algorithm")
Traceback (most recent call last):
...
marl_torchrl.registry.ConfigError: algorithm.lr must be > 0, got -1.0
>>> field_help(Opt)["kind"]
'optimiser (adam | rmsprop)'
"""
from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Callable, Optional

from marl_torchrl.registry import ConfigError

Check = Callable[[Any], Optional[str]]  # value -> None when fine, else what it must be (or "!" + a whole message)


def opt(default: Any, help: str, check: Check | None = None) -> Any:
    """A dataclass field with its only default, a one-line ``help`` and an optional ``check``."""
    meta = {"help": help, "check": check}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def positive(x: Any) -> str | None:
    return None if _number(x) and x > 0 else "must be > 0"


def non_negative(x: Any) -> str | None:
    return None if _number(x) and x >= 0 else "must be >= 0"


def unit_open_closed(x: Any) -> str | None:
    """``(0, 1]``: discounts, fractions of a budget, down-weights."""
    return None if _number(x) and 0 < x <= 1 else "must be in (0, 1]"


def unit_closed(x: Any) -> str | None:
    """``[0, 1]``: probabilities, lambdas."""
    return None if _number(x) and 0 <= x <= 1 else "must be in [0, 1]"


def mixer_kwargs(x: Any) -> str | None:
    """A mixer's keyword arguments: anything but the sizes the env gives every mixer."""
    given = sorted({"n_agents", "state_dim"} & set(x or {}))
    return f"cannot set {', '.join(given)} (the env gives every mixer its sizes)" if given else None


def or_none(check: Check) -> Check:
    """``check``, or null."""

    def checked(x: Any) -> str | None:
        msg = None if x is None else check(x)
        return None if msg is None else f"{msg} or null"

    checked.__doc__ = getattr(check, "__doc__", None)
    return checked


def one_of(*choices: Any, unknown: str | None = None) -> Check:
    """``x`` in ``choices``: "<key> must be a or b", or with ``unknown="weighting"``
    "unknown weighting 'x'; known: a, b (<key>)" for keys that name a kind of thing."""

    def checked(x: Any) -> str | None:
        if x in choices:
            return None
        names = [str(c) for c in choices]
        if unknown:
            return f"!unknown {unknown} {x!r}; known: {', '.join(names)} ({{key}})"
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        return f"must be {listed}"

    checked.choices = choices  # type: ignore[attr-defined]
    return checked


def subset_of(*choices: str) -> Check:
    def checked(xs: Any) -> str | None:
        bad = [x for x in xs if x not in choices]
        return None if not bad else f"has unknown {', '.join(map(str, bad))}; known: {', '.join(choices)}"

    return checked


def validate(cfg: Any, prefix: str = "") -> None:
    """Check every field of a config dataclass (recursively), then its ``cross_check(prefix)`` hook.
    A float field is never inf or nan, whatever its own check."""
    dot = f"{prefix}." if prefix else ""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):  # lr=inf would only fail at the first update
            raise ConfigError(f"{dot}{f.name} must be a finite number, got {value!r}")
        check = f.metadata.get("check")
        if check is not None:
            msg = check(value)
            if msg is not None:  # "!..." is a whole message naming the key itself
                raise ConfigError(msg[1:].format(key=f"{dot}{f.name}") if msg.startswith("!")
                                  else f"{dot}{f.name} {msg}, got {value!r}")
        if dataclasses.is_dataclass(value):
            validate(value, f"{dot}{f.name}")
    hook = getattr(cfg, "cross_check", None)
    if hook is not None:
        hook(prefix)


def field_help(cls: type) -> dict[str, str]:
    """Key -> its help line (with the choices, where the check has a fixed set)."""
    out = {}
    for f in dataclasses.fields(cls):
        text = f.metadata.get("help", "")
        choices = getattr(f.metadata.get("check"), "choices", None)
        out[f.name] = f"{text} ({' | '.join(map(str, choices))})" if choices else text
    return out
