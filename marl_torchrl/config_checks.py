"""Checks on the command line and config that must fail in one line, before anything is built.

Hydra reports an unknown config-group option (``algorithm=qmx``) in a multi-line message with a
traceback hint; :func:`check_group_choices` catches those first and names the known options.

>>> check_group_choices(["algorithm=qmix", "env=matrix/two_step", "seed=3"])
>>> check_group_choices(["algorithm=qmx"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
marl_torchrl.registry.ConfigError: unknown algorithm 'qmx'; known: ..., iql, ..., qmix, ..., vdn
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch

from marl_torchrl.registry import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # shipped inside the package; ./configs links here
GROUPS = {"algorithm": "algorithm", "env": "env"}


def group_options(group: str, config_dir: Path = CONFIG_DIR) -> list[str]:
    """Options of a config group, nested ones as ``family/task`` (e.g. ``vmas/balance``)."""
    root = config_dir / group
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def check_group_choices(argv: Iterable[str], config_dir: Path = CONFIG_DIR) -> None:
    """Raise :class:`ConfigError` for ``group=option`` arguments naming no config file."""
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or key not in GROUPS:
            continue
        known = group_options(GROUPS[key], config_dir)
        if value not in known:
            families = sorted({k.split("/")[0] for k in known if "/" in k})
            hint = f" (families: {', '.join(families)})" if families else ""
            raise ConfigError(f"unknown {key} '{value}'; known: {', '.join(known)}{hint}")


def resolve_device(name: str) -> torch.device:
    """``cpu``/``cuda``/``cuda:N``; asking for CUDA on a machine without it is an error, not a fallback."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"unknown device '{name}'; use cpu or cuda") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda was asked for but torch sees no CUDA device on this machine")
    return device
