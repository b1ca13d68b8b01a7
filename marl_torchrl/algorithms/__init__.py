"""Algorithms: build policy + loss + optimisers from config (no training loop inside).

>>> from marl_torchrl.registry import ALGORITHMS
>>> {"iql", "vdn", "qmix", "qmix_nonmono", "ow_qmix", "cw_qmix", "facmac", "dop"} <= set(ALGORITHMS.names())
True
"""
from __future__ import annotations

from typing import Any, Mapping

from marl_torchrl.algorithms import dop, facmac, value_decomposition  # noqa: F401  (registers the algorithms)
from marl_torchrl.algorithms.base import AlgorithmParts, make_optimizer
from marl_torchrl.registry import ALGORITHMS


def build_algorithm(cfg: Mapping[str, Any], info, device) -> AlgorithmParts:
    """Build the parts named by ``cfg.algorithm.name`` for an env described by ``info``."""
    algo = cfg["algorithm"]
    builder = ALGORITHMS.get(algo["name"])
    return builder(algo, cfg.get("model", {}), info, device, int(cfg["total_frames"]))


__all__ = ["AlgorithmParts", "build_algorithm", "make_optimizer"]
