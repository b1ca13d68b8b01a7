"""Checkpoints: everything needed to evaluate a run or continue it.

A checkpoint is one ``torch.save`` file holding the resolved config, the counters (frames, updates,
episodes), the loss module's state (online and target networks), the optimisers, the target updater,
the exploration state, the RNG states and, optionally, the replay buffer.

>>> import tempfile, os, torch
>>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
>>> save_checkpoint(path, {"config": {"seed": 0}, "counters": {"frames": 10}})
>>> load_checkpoint(path)["counters"]["frames"]
10
>>> load_checkpoint(path + ".missing")
Traceback (most recent call last):
...
marl_torchrl.registry.ConfigError: checkpoint not found: ....missing
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from marl_torchrl.algorithms.base import AlgorithmParts
from marl_torchrl.registry import ConfigError


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write atomically (a crash mid-write never leaves a truncated checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict[str, Any]:
    """Load a checkpoint; a missing or unreadable file is a one-line :class:`ConfigError`."""
    if not Path(path).is_file():
        raise ConfigError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001 - report any unpickling problem in one line
        raise ConfigError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from err


def parts_state(parts: AlgorithmParts) -> dict[str, Any]:
    """The learnable and schedule state of an algorithm's parts."""
    return {
        "loss": parts.loss.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in parts.optimizers.items()},
        "target_updater": parts.target_updater.state_dict(),
        "modules": {k: m.state_dict() for k, m in parts.modules.items()},
    }


def load_parts_state(parts: AlgorithmParts, state: dict[str, Any], *, weights_only: bool = False) -> None:
    """Restore :func:`parts_state` output; ``weights_only`` restores just the networks (evaluation)."""
    parts.loss.load_state_dict(state["loss"])
    if weights_only:
        return
    for k, o in parts.optimizers.items():
        o.load_state_dict(state["optimizers"][k])
    parts.target_updater.load_state_dict(state["target_updater"])
    for k, m in parts.modules.items():
        m.load_state_dict(state["modules"][k])


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
