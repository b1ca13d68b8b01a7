"""Temporally correlated action noise: an Ornstein-Uhlenbeck process per env and agent (DDPG's and
FACMAC's reference ``ornstein_uhlenbeck`` exploration).

``x_{t+1} = (1 - theta) x_t + sigma sqrt(2 theta - theta^2) eps_t`` with ``x = 0`` at each episode's start, so
``sigma`` is the process's stationary standard deviation (in half action ranges, as for Gaussian noise) and
``1 / theta`` its correlation time in steps. Independent Gaussian noise of the same size averages out over a
few steps; this noise pushes the same way for about ``1 / theta`` steps, which moves bodies with inertia.

The process state travels with the data, like a recurrent agent's hidden state: the module reads it from
``noise_key``, writes the next one to ``("next", noise_key)``, and :meth:`OUNoise.primer` puts zeros there at
every reset. Under ``ExplorationType.DETERMINISTIC`` (evaluation) it does nothing.
"""
from __future__ import annotations

import math

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import TensorDictPrimer
from torchrl.envs.utils import ExplorationType, exploration_type

from marl_torchrl import keys
from marl_torchrl.modules.recurrence import hidden_state_primer
from marl_torchrl.registry import ConfigError

NOISE = (keys.GROUP, "ou_noise")


class OUNoise(TensorDictModuleBase):
    """Adds Ornstein-Uhlenbeck noise to ``action_key``, clipped to ``[low, high]`` (``[A, d]`` each).

    ``sigma = (start, end)``: the stationary std falls linearly from ``start`` to ``end`` over ``anneal_frames``
    collected frames (:meth:`step`); it is a buffer, so checkpoints keep it.

    >>> import torch
    >>> from tensordict import TensorDict
    >>> noise = OUNoise(torch.full((2, 1), -1.0), torch.full((2, 1), 1.0), sigma=(0.3, 0.3), theta=0.15,
    ...                 anneal_frames=100)
    >>> td = TensorDict({("agents", "action"): torch.zeros(4, 2, 1)}, [4])
    >>> td = noise(td)
    >>> td["next", "agents", "ou_noise"].shape, bool((td["agents", "action"].abs() <= 1).all())
    (torch.Size([4, 2, 1]), True)
    >>> noise.primer().primers[("agents", "ou_noise")].shape
    torch.Size([2, 1])
    """

    def __init__(self, low: torch.Tensor, high: torch.Tensor, *, sigma: tuple[float, float], theta: float,
                 anneal_frames: int, action_key=keys.ACTION, noise_key=NOISE, is_init_key=keys.IS_INIT):
        super().__init__()
        start, end = (float(x) for x in sigma)
        if not 0.0 <= end <= start:
            raise ConfigError(f"need 0 <= noise_sigma_end <= noise_sigma_start, got {start}, {end}")
        if not 0.0 < theta <= 1.0:
            raise ConfigError(f"the OU noise's theta must be in (0, 1], got {theta}")
        if anneal_frames < 1:
            raise ConfigError(f"the OU noise's anneal_frames must be >= 1, got {anneal_frames}")
        self.register_buffer("low", low.clone())
        self.register_buffer("high", high.clone())
        self.register_buffer("sigma", torch.tensor(start))
        self.start, self.end, self.theta = start, end, float(theta)
        self.anneal_frames = int(anneal_frames)
        self.action_key, self.noise_key, self.is_init_key = action_key, noise_key, is_init_key
        self.in_keys = [action_key, noise_key, is_init_key]
        self.out_keys = [action_key, ("next", *keys.as_tuple(noise_key))]

    def step(self, frames: int = 1) -> None:
        """Anneal the stationary std by ``frames`` collected frames."""
        drop = (self.start - self.end) * frames / self.anneal_frames
        self.sigma.copy_(torch.clamp(self.sigma - drop, min=self.end))

    def primer(self) -> TensorDictPrimer:
        """Zeros ``[*B, A, d]`` under the noise key at every reset (add it to the env's transforms)."""
        return hidden_state_primer(*self.low.shape, hidden_key=self.noise_key)  # the same per-agent zero state

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if exploration_type() not in (ExplorationType.RANDOM, None):
            return tensordict
        action = tensordict.get(self.action_key)
        x = tensordict.get(self.noise_key, None)
        x = torch.zeros_like(action) if x is None else x.to(action.dtype)
        is_init = tensordict.get(self.is_init_key, None)
        if is_init is not None:  # [*B, 1] -> zero the process where an episode starts
            x = torch.where(is_init.reshape(*is_init.shape[:-1], 1, 1), 0.0, x)
        scale = self.sigma * math.sqrt(2 * self.theta - self.theta ** 2)
        x = (1.0 - self.theta) * x + scale * torch.randn_like(x)
        half = (self.high - self.low) / 2
        tensordict.set(self.action_key, torch.clamp(action + x * half, self.low, self.high))
        tensordict.set(self.out_keys[1], x)
        return tensordict
