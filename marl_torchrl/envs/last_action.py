"""The last-action input (PyMARL's ``obs_last_action``): each agent's previous action appended to its
observation, so every network that reads ``("agents", "observation")`` sees it, on every env family.

:class:`LastAction` turns ``("agents", "observation")`` ``[*B, A, F]`` into ``[*B, A, F + k]``: the last
``k`` features are the agent's action at the previous step (one-hot, ``k = n_actions``, for discrete
actions; the action vector itself, ``k = d``, for continuous ones) and zeros on the first step of an
episode. On a partial reset torchrl keeps the observation of the envs that are not reset, so their
last action carries on. :func:`add_last_action` appends it to a built env (``model.last_action=true``).

>>> from marl_torchrl.envs import describe, make_env
>>> env = add_last_action(make_env({"family": "matrix", "task": "two_step"}, num_envs=2))
>>> describe(env).obs_dim  # 3 observation features + 2 actions
5
>>> td = env.rollout(2)
>>> td["agents", "observation"][:, 0, :, 3:].abs().sum().item()  # first step: no previous action
0.0
>>> last = td["agents", "observation"][:, 1, :, 3:]  # second step: the first step's action, one-hot
>>> torch.equal(last, torch.nn.functional.one_hot(td["agents", "action"][:, 0], 2).float())
True
"""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torchrl.data import Composite, Unbounded
from torchrl.envs import EnvBase
from torchrl.envs.transforms import Transform

from marl_torchrl import keys
from marl_torchrl.envs.face import describe


class LastAction(Transform):
    """Append each agent's previous action (one-hot if ``n_actions`` is given, else the action vector of
    width ``action_dim``) to its observation; zeros after a reset.

    >>> import torch
    >>> from tensordict import TensorDict
    >>> t = LastAction(n_actions=3)
    >>> td = TensorDict({("agents", "action"): torch.tensor([[2, 0]])}, [1])
    >>> nxt = TensorDict({("agents", "observation"): torch.zeros(1, 2, 1)}, [1])
    >>> t._step(td, nxt)["agents", "observation"].tolist()
    [[[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]]]
    """

    def __init__(self, n_actions: int | None = None, action_dim: int | None = None,
                 obs_key=keys.OBS, action_key=keys.ACTION):
        if (n_actions is None) == (action_dim is None):
            raise ValueError("LastAction needs exactly one of n_actions (discrete) or action_dim (continuous)")
        super().__init__(in_keys=[obs_key], out_keys=[obs_key])
        self.n_actions, self.width = n_actions, n_actions or action_dim
        self.action_key = action_key

    def _features(self, action: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if self.n_actions is not None:
            return torch.nn.functional.one_hot(action.long(), self.n_actions).to(dtype)
        return action.to(dtype)

    def _step(self, tensordict: TensorDictBase, next_tensordict: TensorDictBase) -> TensorDictBase:
        obs = next_tensordict.get(self.in_keys[0])
        last = self._features(tensordict.get(self.action_key), obs.dtype)
        next_tensordict.set(self.out_keys[0], torch.cat([obs, last], dim=-1))
        return next_tensordict

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        obs = tensordict_reset.get(self.in_keys[0])
        zeros = obs.new_zeros(*obs.shape[:-1], self.width)
        tensordict_reset.set(self.out_keys[0], torch.cat([obs, zeros], dim=-1))
        return tensordict_reset

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        spec = observation_spec[self.in_keys[0]]
        observation_spec[self.out_keys[0]] = Unbounded(
            shape=(*spec.shape[:-1], spec.shape[-1] + self.width), dtype=spec.dtype, device=spec.device
        )
        return observation_spec


def add_last_action(env: EnvBase) -> EnvBase:
    """Append :class:`LastAction` to an env with the standard face (discrete or continuous actions)."""
    info = describe(env)
    width = {"n_actions": info.n_actions} if not info.continuous else {"action_dim": int(info.action_low.shape[-1])}
    env.append_transform(LastAction(**width))
    return env
