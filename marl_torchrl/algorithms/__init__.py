"""Algorithms: build policy + loss + optimisers from config (no training loop inside).

Builders are registered under their config schema's name; every preset of a schema uses its builder.

>>> from marl_torchrl.config import ALGORITHM_SCHEMAS
>>> from marl_torchrl.registry import ALGORITHMS
>>> set(ALGORITHM_SCHEMAS) <= set(ALGORITHMS.names())
True
"""
from __future__ import annotations

from typing import Any

from marl_torchrl.algorithms import dop, facmac, pqn, value_decomposition  # noqa: F401  (registers the algorithms)
from marl_torchrl.algorithms.base import AlgorithmParts, make_optimizer
from marl_torchrl.config import schema_name, to_run_config
from marl_torchrl.registry import ALGORITHMS


def build_algorithm(cfg: Any, info, device) -> AlgorithmParts:
    """Build the parts of ``cfg.algorithm`` (a :class:`~marl_torchrl.config.RunConfig`, or a composed
    config) for an env described by ``info``; the replay's ``burn_in`` reaches the loss."""
    cfg = to_run_config(cfg)
    builder = ALGORITHMS.get(schema_name(cfg.algorithm, "algorithm"))
    return builder(cfg.algorithm, cfg.model, info, device, cfg.total_frames, burn_in=cfg.replay.burn_in)


__all__ = ["AlgorithmParts", "build_algorithm", "make_optimizer"]
