"""Skip (not fail) the doctests of an optional env family whose extra is not installed.

``pytest`` runs ``--doctest-modules`` over ``marl_torchrl/``; the doctests of ``marl_torchrl/envs/<family>.py``
build that family's envs, so a plain ``pip install -e .[dev]`` skips them. The families and their packages
are in ``tests/families.py`` (shared with the tests).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))  # where pytest puts it for the tests too: one `families` module

from families import FAMILY_PACKAGES, missing_reason  # noqa: E402

ENVS_DIR = ROOT / "marl_torchrl" / "envs"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if not isinstance(item, DoctestItem):
            continue
        path = Path(item.path).resolve()
        if path.parent == ENVS_DIR and path.stem in FAMILY_PACKAGES:
            reason = missing_reason(path.stem)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
