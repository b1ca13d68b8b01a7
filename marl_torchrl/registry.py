"""Name -> builder registries for algorithms, mixers and environment families.

A registry maps a config name to a callable and turns an unknown name into a one-line error that
lists the known ones, before anything is built.

>>> from marl_torchrl.registry import Registry
>>> colours = Registry("colour")
>>> @colours.register("red")
... def make_red():
...     return (255, 0, 0)
>>> colours.get("red")()
(255, 0, 0)
>>> colours.get("blue")
Traceback (most recent call last):
...
marl_torchrl.registry.ConfigError: unknown colour 'blue'; known: red
"""
from __future__ import annotations

from typing import Callable, Dict, Generic, Iterable, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad configuration, reported in one line before any training starts.

    >>> str(ConfigError("unknown algorithm 'x'"))
    "unknown algorithm 'x'"
    """


def check_known(given: Iterable, known: Iterable, what: str) -> None:
    """Typos in config keys are errors, never silently ignored options.

    >>> check_known({"lr": 1}, ["lr", "gamma"], "algorithm option(s)")
    >>> check_known({"lrr": 1}, ["lr", "gamma"], "algorithm option(s)")
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: unknown algorithm option(s): lrr; known: gamma, lr
    """
    known = set(known)
    unknown = sorted(str(k) for k in given if k not in known)
    if unknown:
        raise ConfigError(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(sorted(known))}")


class Registry(Generic[T]):
    """A named table of builders; ``get`` fails with a :class:`ConfigError` on unknown names.

    >>> r = Registry("mixer")
    >>> _ = r.register("sum")(sum)
    >>> r.names(), "sum" in r
    (['sum'], True)
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ConfigError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def register_class(self, name: str, cls: Callable, options: Iterable[str]) -> Callable:
        """Register and return ``build(*args, **options) -> cls(*args, **options)`` that refuses any
        keyword outside ``options`` with a one-line :class:`ConfigError` (config typos never pass).

        >>> r = Registry("shape")
        >>> build = r.register_class("box", dict, ["width"])
        >>> build(width=2)
        {'width': 2}
        >>> r.get("box")(depth=2)
        Traceback (most recent call last):
        ...
        marl_torchrl.registry.ConfigError: unknown option(s) for shape 'box': depth; known: width
        """
        allowed = tuple(options)

        def build(*args, **given):
            check_known(given, allowed, f"option(s) for {self.kind} '{name}'")
            return cls(*args, **given)

        build.__name__ = build.__qualname__ = f"build_{name}"
        build.__doc__ = f"Build a {getattr(cls, '__name__', cls)} ({self.kind} '{name}'); options: {', '.join(allowed)}."
        return self.register(name)(build)

    def get(self, name: str) -> T:
        if name not in self._items:
            raise ConfigError(f"unknown {self.kind} '{name}'; known: {', '.join(sorted(self._items))}")
        return self._items[name]

    def remove(self, name: str) -> None:
        """Forget ``name`` (a plugin's builder, e.g. after a test registered it).

        >>> r = Registry("mixer")
        >>> _ = r.register("sum")(sum)
        >>> r.remove("sum"); r.names()
        []
        """
        self._items.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


ALGORITHMS: Registry = Registry("algorithm")
MIXERS: Registry = Registry("mixer")
ENV_FAMILIES: Registry = Registry("env family")
