"""Optional env families: the packages each one needs, and how a test skips (never fails) without them.

A plain ``pip install -e .[dev]`` has none of the optional families; ``pip install -e .[<family>]`` adds
one (the extras in pyproject.toml are named after the families). Tests of an optional family use one of:

- ``skip_if_family_missing(name)`` first thing inside a test (``name``: a family ``"smax"``, an env
  config name ``"smax/3m"`` as in ``env=smax/3m``, or an env cfg with a ``family`` key);
- ``@requires_family(name)`` on a test, or ``pytestmark = requires_family(name)`` for a whole file;
- ``family_params(names)`` in ``@pytest.mark.parametrize``: each param skips if its family's extra is missing;
- ``skip_module_if_family_missing(name)`` at the top of a test file, before importing the extra's packages.

The root ``conftest.py`` skips the doctests of ``marl_torchrl/envs/<family>.py`` the same way.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from functools import lru_cache

import pytest

# family (= pip extra in pyproject.toml) -> top-level modules it needs. Families not listed (vmas, matrix,
# gridworld) come with the plain install.
FAMILY_PACKAGES = {
    "pettingzoo": ("pettingzoo", "mpe2"),
    "lbf": ("lbforaging", "gymnasium"),
    "smax": ("jaxmarl", "jax"),
}


def family_of(name) -> str:
    """``"smax"``, ``"smax/3m"`` (an ``env=`` config name) or ``{"family": "smax", ...}`` -> ``"smax"``."""
    if isinstance(name, Mapping):
        return str(name["family"])
    return str(name).split("/")[0]


@lru_cache(maxsize=None)
def _installed(module: str) -> bool:
    # cached: tests that mask a package (sys.modules[name] = None) do not change what is installed
    return importlib.util.find_spec(module) is not None


def missing_reason(name) -> str | None:
    """Why ``name``'s family cannot run here (the missing packages and the extra to install), or None."""
    family = family_of(name)
    missing = [m for m in FAMILY_PACKAGES.get(family, ()) if not _installed(m)]
    if not missing:
        return None
    return f"env family {family!r} needs the {family} extra ({', '.join(missing)} not installed): pip install -e .[{family}]"


def skip_if_family_missing(name) -> None:
    """Skip the running test if ``name``'s family needs an extra that is not installed."""
    reason = missing_reason(name)
    if reason:
        pytest.skip(reason)


def skip_module_if_family_missing(name) -> None:
    """Skip the whole test file (call at module level, before importing the extra's packages)."""
    reason = missing_reason(name)
    if reason:
        pytest.skip(reason, allow_module_level=True)


def requires_family(name) -> pytest.MarkDecorator:
    """A mark: skip the test (or, as ``pytestmark``, the file) if ``name``'s family's extra is missing."""
    reason = missing_reason(name)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def family_params(names: Iterable) -> list:
    """``names`` as ``pytest.param``s, each skipped if its family's extra is missing."""
    return [pytest.param(n, marks=requires_family(n)) for n in names]
