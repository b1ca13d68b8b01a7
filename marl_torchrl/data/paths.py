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

from marl_torchrl.data.replay import make_sequence_replay
from marl_torchrl.data.sequences import SequenceBuilder
from marl_torchrl.registry import ConfigError


class ReplayPath:
    """Sequences into replay; ``updates`` sampled batches per iteration once the replay is warm.

    >>> path = ReplayPath(SequenceBuilder(seq_len=4), capacity=10, batch_size=2, warmup=2, updates=3)
    >>> list(path.batches()), len(path.replay)
    ([], 0)
    """

    def __init__(self, builder: SequenceBuilder, *, capacity: int, batch_size: int, warmup: int, updates: int,
                 device="cpu"):
        self.builder, self.updates = builder, int(updates)
        self.replay = make_sequence_replay(int(capacity), int(batch_size), device=device)
        self.warmup = max(int(warmup), int(batch_size))

    def add(self, batch: TensorDictBase) -> None:
        seqs = self.builder.add(batch)
        if seqs is not None:
            self.replay.extend(seqs.to(self.replay.storage.device))

    def batches(self) -> Iterator[TensorDictBase]:
        if len(self.replay) < self.warmup:
            return
        for _ in range(self.updates):
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
