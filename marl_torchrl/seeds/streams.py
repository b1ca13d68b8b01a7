"""One random stream per seed on the process's generators: :class:`RngStreams`.

A single run draws its random numbers (initial weights, epsilon-greedy exploration, replay sampling, env
resets and dynamics) from generators the process shares: torch's global one (and CUDA's), seeded with
``seed``, numpy's and Python's, and, for VMAS, the one random state VMAS keeps for all its envs
(:func:`~marl_torchrl.envs.vmas.shared_random_state`). K seeds in one process reproduce K single runs only
if each seed's draws come from its own stream, in the order its single run makes them. :class:`RngStreams`
keeps K copies of all those states and switches one in around every piece of a seed's work
(``with streams.use(k):``), saving it back after: seed ``k`` sees exactly the draws its single run sees,
whatever the other seeds draw in between. A seed's checkpoint, written inside ``use(k)``, holds its own
torch stream, as a single run's does.

>>> import torch
>>> streams = RngStreams(2)
>>> for k in range(2):
...     _ = torch.manual_seed(k)
...     streams.save(k)
>>> with streams.use(1):
...     b1 = torch.rand(2)
>>> with streams.use(0):
...     a1 = torch.rand(2)
>>> with streams.use(1):
...     b2 = torch.rand(2)
>>> with streams.use_torch(1):                              # torch's generator only
...     b3 = torch.rand(2)
>>> _ = torch.manual_seed(1)
>>> torch.equal(torch.cat([b1, b2, b3]), torch.rand(6))   # seed 1's draws, as if seed 0 had drawn nothing
True
"""
from __future__ import annotations

import random
import sys
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from marl_torchrl.checkpoint import rng_state, set_rng_state

__all__ = ["RngStreams"]


def process_random_state() -> dict[str, Any]:
    """The states of every generator a run draws from (VMAS's only once VMAS is loaded)."""
    state = {"torch": rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if "vmas" in sys.modules:
        from marl_torchrl.envs.vmas import shared_random_state

        state["vmas"] = shared_random_state()
    return state


def set_process_random_state(state: dict[str, Any]) -> None:
    """Put back a :func:`process_random_state`."""
    set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "vmas" in state:
        from marl_torchrl.envs.vmas import set_shared_random_state

        set_shared_random_state(state["vmas"])


class RngStreams:
    """K saved :func:`process_random_state` s; ``use(k)`` runs a block on stream ``k``."""

    def __init__(self, k: int):
        self.states: list[dict[str, Any] | None] = [None] * int(k)

    def save(self, k: int) -> None:
        """Stream ``k`` continues from the generator's current state."""
        self.states[k] = process_random_state()

    @contextmanager
    def use_torch(self, k: int) -> Iterator[None]:
        """``use(k)`` for a block that draws from torch's generators only (e.g. epsilon-greedy exploration):
        it switches just those, which is cheaper; the others are left as they are."""
        state = self.states[k]
        if state is None:
            raise RuntimeError(f"random stream {k} was never saved")
        set_rng_state(state["torch"])
        try:
            yield
        finally:
            state["torch"] = rng_state()

    @contextmanager
    def use(self, k: int) -> Iterator[None]:
        """Run the block with stream ``k`` on the global generator; afterwards stream ``k`` continues from
        where the block left it (also when the block raises)."""
        if self.states[k] is None:
            raise RuntimeError(f"random stream {k} was never saved")
        set_process_random_state(self.states[k])
        try:
            yield
        finally:
            self.save(k)
