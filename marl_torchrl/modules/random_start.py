"""Uniform random actions for the first frames of a run (TD3's and SAC's ``start_steps``; FACMAC's reference
uses 10,000 for continuous control), around any action-noise module.

A deterministic actor with small noise fills the replay with actions close to its own, so its critic sees
little of how the return depends on the action; a start of uniform actions over the whole box gives the critic
that spread before the actor's gradient leans on it.
"""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.envs.utils import ExplorationType, exploration_type

from marl_torchrl import keys
from marl_torchrl.registry import ConfigError


class RandomStart(TensorDictModuleBase):
    """``noise`` (a module with ``step(frames)`` and a ``sigma``), except that while fewer than ``frames``
    frames have been collected (counted by :meth:`step`, checkpointed as a buffer) the action is drawn
    uniformly in ``[low, high]`` (``[A, d]``). Off under ``ExplorationType.DETERMINISTIC`` (evaluation).

    >>> from tensordict import TensorDict
    >>> from marl_torchrl.modules.ou_noise import OUNoise
    >>> low, high = torch.zeros(2, 1), torch.full((2, 1), 4.0)
    >>> start = RandomStart(OUNoise(low, high, sigma=(0.1, 0.1), theta=0.15, anneal_frames=100), low, high,
    ...                     frames=10)
    >>> td = start(TensorDict({("agents", "action"): torch.full((256, 2, 1), 2.0)}, [256]))
    >>> bool(td["agents", "action"].std() > 1.0)  # uniform on [0, 4]: std 1.15
    True
    >>> start.step(10); start.random
    False
    """

    def __init__(self, noise: TensorDictModuleBase, low: torch.Tensor, high: torch.Tensor, *, frames: int,
                 action_key=keys.ACTION):
        super().__init__()
        if frames < 0:
            raise ConfigError(f"random_frames must be >= 0, got {frames}")
        self.noise, self.frames, self.action_key = noise, int(frames), action_key
        self.register_buffer("low", low.clone())
        self.register_buffer("high", high.clone())
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))
        self.in_keys, self.out_keys = list(noise.in_keys), list(noise.out_keys)

    @property
    def random(self) -> bool:
        """Whether the policy still acts uniformly at random."""
        return int(self.seen) < self.frames

    @property
    def sigma(self) -> torch.Tensor:
        return self.noise.sigma

    def step(self, frames: int = 1) -> None:
        self.noise.step(frames)
        self.seen += int(frames)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        tensordict = self.noise(tensordict)
        if self.random and exploration_type() in (ExplorationType.RANDOM, None):
            action = tensordict.get(self.action_key)
            tensordict.set(self.action_key, self.low + (self.high - self.low) * torch.rand_like(action))
        return tensordict
