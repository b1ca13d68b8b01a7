"""Transforms that give every environment family the same face.

- :class:`TeamReward`: per-agent rewards ``("agents", "reward")`` ``[*B, A, 1]`` -> team reward
  ``"reward"`` ``[*B, 1]`` (mean or sum over agents); the per-agent rewards stay where they are.
- :class:`ObservationsAsState`: root ``"state"`` ``[*B, A*F]`` from the agents' observations, for
  envs with no global state of their own (written on reset and on step, so ``("next", "state")`` too).
- :class:`AddTruncated`: a root ``"truncated"`` flag that is always ``False``, for envs with no time
  limit of their own and none set by :class:`~torchrl.envs.StepCounter`.

>>> import torch
>>> from tensordict import TensorDict
>>> td = TensorDict({("agents", "reward"): torch.tensor([[[1.0], [3.0]]])}, batch_size=[1])
>>> TeamReward(mode="sum")._call(td)["reward"]
tensor([[4.]])
"""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torchrl.data import Categorical, Composite, Unbounded
from torchrl.envs.transforms import Transform

from marl_torchrl import keys

TEAM_REWARD_MODES = ("mean", "sum")


class TeamReward(Transform):
    """Write the team reward ``[*B, 1]``: the mean (or sum) of the per-agent rewards ``[*B, A, 1]``.

    Args:
        mode: ``"mean"`` (default) or ``"sum"`` over the agent dimension.
        in_key: per-agent reward key, default ``("agents", "reward")``.
        out_key: team reward key, default ``"reward"``.

    >>> import torch
    >>> from tensordict import TensorDict
    >>> td = TensorDict({("agents", "reward"): torch.ones(3, 4, 1)}, batch_size=[3])
    >>> TeamReward()._call(td)["reward"].shape
    torch.Size([3, 1])
    """

    def __init__(self, mode: str = "mean", in_key=keys.AGENT_REWARD, out_key=keys.REWARD):
        if mode not in TEAM_REWARD_MODES:
            raise ValueError(f"team_reward must be one of {TEAM_REWARD_MODES}, got {mode!r}")
        super().__init__(in_keys=[in_key], out_keys=[out_key])
        self.mode = mode

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        reward = next_tensordict.get(self.in_keys[0])
        team = reward.mean(-2) if self.mode == "mean" else reward.sum(-2)
        next_tensordict.set(self.out_keys[0], team)
        return next_tensordict

    def transform_reward_spec(self, reward_spec: Composite) -> Composite:
        agent_spec = reward_spec[self.in_keys[0]]
        reward_spec[self.out_keys[0]] = Unbounded(
            shape=(*reward_spec.shape, 1), dtype=agent_spec.dtype, device=agent_spec.device
        )
        return reward_spec


class ObservationsAsState(Transform):
    """Root ``"state"`` ``[*B, A*F]``: the agents' observations ``[*B, A, F]`` concatenated.

    >>> import torch
    >>> from tensordict import TensorDict
    >>> td = TensorDict({("agents", "observation"): torch.arange(6.0).view(1, 2, 3)}, batch_size=[1])
    >>> ObservationsAsState()._call(td)["state"]
    tensor([[0., 1., 2., 3., 4., 5.]])
    """

    def __init__(self, in_key=keys.OBS, out_key=keys.STATE):
        super().__init__(in_keys=[in_key], out_keys=[out_key])

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        obs = next_tensordict.get(self.in_keys[0])
        next_tensordict.set(self.out_keys[0], obs.flatten(-2, -1))
        return next_tensordict

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return self._call(tensordict_reset)

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        obs_spec = observation_spec[self.in_keys[0]]
        n_agents, n_features = obs_spec.shape[-2:]
        observation_spec[self.out_keys[0]] = Unbounded(
            shape=(*observation_spec.shape, n_agents * n_features),
            dtype=obs_spec.dtype,
            device=obs_spec.device,
        )
        return observation_spec


class AddTruncated(Transform):
    """Add a root ``"truncated"`` flag ``[*B, 1]`` that is always ``False`` (no time limit).

    >>> import torch
    >>> from tensordict import TensorDict
    >>> td = TensorDict({"done": torch.ones(2, 1, dtype=torch.bool)}, batch_size=[2])
    >>> AddTruncated()._call(td)["truncated"].any().item()
    False
    """

    def __init__(self, done_key=keys.DONE, out_key=keys.TRUNCATED):
        super().__init__(in_keys=[done_key], out_keys=[out_key])

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        if self.out_keys[0] not in next_tensordict.keys(True):
            done = next_tensordict.get(self.in_keys[0])
            next_tensordict.set(self.out_keys[0], torch.zeros_like(done))
        return next_tensordict

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return self._call(tensordict_reset)

    def transform_done_spec(self, done_spec: Composite) -> Composite:
        done = done_spec[self.in_keys[0]]
        done_spec[self.out_keys[0]] = Categorical(
            n=2, shape=done.shape, dtype=torch.bool, device=done.device
        )
        return done_spec
