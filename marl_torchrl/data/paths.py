"""The loop's two data paths from collected batches to training batches.

- :class:`ReplayPath` (off-policy): collector batch -> :class:`~marl_torchrl.data.SequenceBuilder` ->
  sequence replay; once ``warmup`` sequences are stored, ``updates`` sampled batches per iteration.
- :class:`RolloutPath` (on-policy, e.g. PQN): the collected ``[E, T]`` rollout itself, no replay;
  ``epochs`` passes over it, each split into ``minibatches`` groups of whole env rows (a recurrent loss
  unrolls each row from the rollout's first step).

Both have ``add(batch)`` and ``batches()``; the loop does not know which one it runs.

>>> import torch
>>> from tensordict import TensorDict
>>> path = RolloutPath(epochs=2, minibatches=2)
>>> path.add(TensorDict({"x": torch.arange(8.0).reshape(4, 2)}, [4, 2]))
>>> [tuple(b.batch_size) for b in path.batches()]
[(2, 2), (2, 2), (2, 2), (2, 2)]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from tensordict import TensorDictBase

from marl_torchrl import keys
from marl_torchrl.data.replay import make_sequence_replay
from marl_torchrl.data.sequences import SequenceBuilder
from marl_torchrl.registry import ConfigError


class ReplayPath:
    """Sequences into replay; once the replay is warm, ``updates`` sampled batches per iteration, or
    ``updates_per_episode`` per episode finished in the iteration (PyMARL's one per episode: 1.0), the
    fraction carried to the next iteration.

    >>> path = ReplayPath(SequenceBuilder(seq_len=4), capacity=10, batch_size=2, warmup=2, updates=3)
    >>> list(path.batches()), len(path.replay)
    ([], 0)
    >>> ReplayPath(SequenceBuilder(seq_len=4), capacity=10, batch_size=2, warmup=2)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: give exactly one of updates (per iteration) and updates_per_episode, got None and None
    """

    def __init__(self, builder: SequenceBuilder, *, capacity: int, batch_size: int, warmup: int,
                 updates: int | None = None, updates_per_episode: float | None = None, device="cpu"):
        if (updates is None) == (updates_per_episode is None):
            raise ConfigError("give exactly one of updates (per iteration) and updates_per_episode, "
                              f"got {updates} and {updates_per_episode}")
        self.builder = builder
        self.updates = None if updates is None else int(updates)
        self.per_episode = None if updates_per_episode is None else float(updates_per_episode)
        self.replay = make_sequence_replay(int(capacity), int(batch_size), device=device)
        self.warmup = max(int(warmup), int(batch_size))
        self.owed = 0.0  # updates_per_episode: updates earned by finished episodes, not yet made (checkpointed)

    def add(self, batch: TensorDictBase) -> None:
        seqs = self.builder.add(batch)
        if seqs is not None:
            self.replay.extend(seqs.to(self.replay.storage.device))
        if self.per_episode is not None and len(self.replay) >= self.warmup:
            self.owed += self.per_episode * int(batch.get(("next", keys.DONE)).sum())

    def batches(self) -> Iterator[TensorDictBase]:
        if len(self.replay) < self.warmup:
            return
        n = self.updates
        if n is None:
            n = int(self.owed)
            self.owed -= n
        for _ in range(n):
            yield self.replay.sample()


@dataclass
class RolloutSpec:
    """How an on-policy algorithm trains on each rollout: ``epochs`` x ``minibatches`` gradient steps."""

    epochs: int = 1
    minibatches: int = 1


class RolloutPath:
    """The last collected rollout only, shuffled over envs each epoch; keeps no replay.

    >>> from tensordict import TensorDict
    >>> RolloutPath(epochs=1, minibatches=3).add(TensorDict({}, [4, 2]))
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: algorithm.minibatches (3) must divide env.num_envs (4): each minibatch is an equal group of whole env rows
    >>> RolloutPath(epochs=1, minibatches=0)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: on-policy training needs epochs >= 1 and minibatches >= 1, got 1 and 0
    """

    replay = None
    owed = 0.0  # nothing carries between rollouts (ReplayPath's updates earned but not yet made)

    def __init__(self, epochs: int = 1, minibatches: int = 1):
        if epochs < 1 or minibatches < 1:
            raise ConfigError(
                f"on-policy training needs epochs >= 1 and minibatches >= 1, got {epochs} and {minibatches}")
        self.epochs, self.minibatches = int(epochs), int(minibatches)
        self._rollout: TensorDictBase | None = None

    def add(self, batch: TensorDictBase) -> None:
        if batch.shape[0] % self.minibatches:
            raise ConfigError(f"algorithm.minibatches ({self.minibatches}) must divide env.num_envs ({batch.shape[0]}): "
                              "each minibatch is an equal group of whole env rows")
        self._rollout = batch

    def batches(self) -> Iterator[TensorDictBase]:
        rollout, self._rollout = self._rollout, None
        if rollout is None:
            return
        for _ in range(self.epochs):
            for idx in torch.randperm(rollout.shape[0], device=rollout.device).chunk(self.minibatches):
                yield rollout[idx]
