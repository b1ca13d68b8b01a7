"""Cooperative matrix games (family ``"matrix"``): vectorised torch envs, batch ``[E]``, any device.

Tasks and config keys (:class:`~marl_torchrl.config.envs.MatrixOneStepConfig` and
:class:`~marl_torchrl.config.envs.MatrixTwoStepConfig`; besides ``family``, ``num_envs``, ``name``, ``max_steps`` (leave null: the
games end on their own); the reward is already the team's):

- ``task: one_step`` -- one-step N-player game. ``payoff``: nested list with one axis per agent
  (N = its number of dims >= 2), every axis the same length n (a hypercube: n actions per agent).
  Optional ``n_agents``/``n_actions`` must agree with the payoff's shape. Observation: a constant 1.0
  per agent (F=1); state: a constant 1.0 (S=1). One step, then ``terminated``.
- ``task: two_step`` -- the QMIX two-step game (Rashid et al. 2018): 2 agents, 2 actions. Step 1 pays 0
  and agent 1's action picks state 2A (action 0) or 2B (action 1); step 2 pays ``payoff_2a[a0][a1]`` or
  ``payoff_2b[a0][a1]`` (defaults ``[[7, 7], [7, 7]]`` and ``[[0, 1], [1, 8]]``) and terminates.
  Observation and state: one-hot of (start, 2A, 2B), F=S=3 (all zeros once terminated).

Bad payoffs raise a one-line :class:`~marl_torchrl.registry.ConfigError` when the env is built.

>>> from marl_torchrl.envs import make_env
>>> env = make_env({"family": "matrix", "task": "one_step", "payoff": [[8, -12], [-12, 0]]}, num_envs=2)
>>> td = env.reset()
>>> td["agents", "action"] = torch.tensor([[0, 0], [0, 1]])
>>> env.step(td)["next", "reward"].flatten().tolist()
[8.0, -12.0]
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from marl_torchrl import keys
from marl_torchrl.config.envs import MatrixOneStepConfig, MatrixTwoStepConfig
from marl_torchrl.envs.face import standard_face
from marl_torchrl.envs.seed_blocks import block_size
from marl_torchrl.registry import ENV_FAMILIES, ConfigError



def payoff_tensor(value: Any, name: str = "payoff") -> torch.Tensor:
    """Check a nested list of numbers (not ragged, finite) and return it as a float32 tensor.

    >>> payoff_tensor([[1, 0], [0, 1]]).shape
    torch.Size([2, 2])
    >>> payoff_tensor([[1, 0], [0]])
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: payoff is ragged: payoff[1] has shape (1,), payoff[0] has (2,)
    """
    _shape(value, name)
    return torch.tensor(value, dtype=torch.float32)


def _shape(x: Any, path: str) -> tuple:
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        if not math.isfinite(x):
            raise ConfigError(f"{path} is not finite: {x!r}")
        return ()
    if isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        if len(x) == 0:
            raise ConfigError(f"{path} is an empty list")
        shapes = [_shape(v, f"{path}[{i}]") for i, v in enumerate(x)]
        for i, s in enumerate(shapes):
            if s != shapes[0]:
                root = path.split("[")[0]
                raise ConfigError(f"{root} is ragged: {path}[{i}] has shape {s}, {path}[0] has {shapes[0]}")
        return (len(x),) + shapes[0]
    raise ConfigError(f"{path} is not a number: {x!r}")


class _MatrixGame(EnvBase):
    """Shared specs and stepping for the matrix games: ``_phase`` [E] (0 = start) drives everything."""

    episode_limit: int = 1

    def __init__(self, n_agents: int, n_actions: int, obs_dim: int, num_envs: int, device="cpu"):
        super().__init__(batch_size=torch.Size([num_envs]), device=device)
        e, a = num_envs, n_agents
        self.full_observation_spec = Composite(
            agents=Composite(
                observation=Bounded(0.0, 1.0, shape=(e, a, obs_dim), dtype=torch.float32, device=device),
                shape=(e, a),
            ),
            state=Bounded(0.0, 1.0, shape=(e, obs_dim), dtype=torch.float32, device=device),
            shape=(e,),
        )
        self.full_action_spec = Composite(
            agents=Composite(
                action=Categorical(n_actions, shape=(e, a), dtype=torch.int64, device=device), shape=(e, a)
            ),
            shape=(e,),
        )
        self.full_reward_spec = Composite(reward=Unbounded(shape=(e, 1), device=device), shape=(e,))
        flag = lambda: Categorical(2, shape=(e, 1), dtype=torch.bool, device=device)  # noqa: E731
        self.full_done_spec = Composite(done=flag(), terminated=flag(), truncated=flag(), shape=(e,))
        self.n_agents = n_agents
        self._phase = torch.zeros(num_envs, dtype=torch.long, device=device)

    def _observe(self) -> TensorDict:
        state = self._state_of(self._phase)
        obs = state.unsqueeze(-2).expand(*state.shape[:-1], self.n_agents, state.shape[-1])
        agents = TensorDict({keys.OBS[1]: obs.clone()}, batch_size=obs.shape[:-1])
        return TensorDict({keys.GROUP: agents, keys.STATE: state}, batch_size=self.batch_size)

    def _reset(self, tensordict: TensorDictBase | None, **kwargs) -> TensorDictBase:
        if tensordict is not None and "_reset" in tensordict.keys():
            self._phase[tensordict.get("_reset").view(-1)] = 0
        else:
            self._phase.zero_()
        out = self._observe()
        done = (self._phase > 0).unsqueeze(-1)
        out.update({keys.DONE: done, keys.TERMINATED: done.clone(), keys.TRUNCATED: torch.zeros_like(done)})
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = tensordict.get(keys.ACTION)
        reward, self._phase = self._transition(self._phase, action)
        out = self._observe()
        terminated = (self._phase == self.terminal_phase).unsqueeze(-1)
        out.update(
            {
                keys.REWARD: reward.unsqueeze(-1).float(),
                keys.DONE: terminated,
                keys.TERMINATED: terminated.clone(),
                keys.TRUNCATED: torch.zeros_like(terminated),
            }
        )
        return out

    def _set_seed(self, seed: int | None) -> None:
        """The games are deterministic: nothing to seed."""

    supports_seed_blocks = True  # K seeds' envs as one env (num_seeds=K): see reset_blocks_from

    def reset_blocks_from(self, sources, rng) -> None:
        """Hold K seeds' envs (``sources``, E envs each) as blocks of E. The games draw nothing, so every
        block already resets and steps as its seed's own env: only the sizes are checked.

        >>> OneStepGame(torch.eye(2), num_envs=4).reset_blocks_from([OneStepGame(torch.eye(2), num_envs=2)] * 2, None)
        """
        block_size(self, sources)


class OneStepGame(_MatrixGame):
    """One-step N-player cooperative game with payoff tensor ``payoff`` (shape ``[n] * N``).

    >>> env = OneStepGame(torch.eye(3), num_envs=2)
    >>> td = env.reset()
    >>> td["agents", "action"] = torch.tensor([[2, 2], [0, 1]])
    >>> env.step(td)["next", "reward"].flatten().tolist()
    [1.0, 0.0]
    """

    terminal_phase = 1

    def __init__(self, payoff: torch.Tensor, num_envs: int = 1, device="cpu"):
        super().__init__(payoff.ndim, payoff.shape[0], 1, num_envs, device)
        self.payoff = payoff.to(device=self.device, dtype=torch.float32).flatten()
        n = payoff.shape[0]
        self._strides = torch.tensor([n ** (payoff.ndim - 1 - i) for i in range(payoff.ndim)], device=self.device)

    def _state_of(self, phase: torch.Tensor) -> torch.Tensor:
        return torch.ones(*phase.shape, 1, device=phase.device)

    def _transition(self, phase, action):
        reward = self.payoff[(action * self._strides).sum(-1)] * (phase == 0)
        return reward, torch.ones_like(phase)


class TwoStepGame(_MatrixGame):
    """The QMIX two-step game; ``payoff_2a``/``payoff_2b`` are 2x2 tensors.

    >>> env = TwoStepGame(torch.full((2, 2), 7.0), torch.tensor([[0.0, 1.0], [1.0, 8.0]]), num_envs=1)
    >>> td = env.reset()
    >>> td["agents", "action"] = torch.tensor([[1, 1]])
    >>> td = env.step(td)["next"]
    >>> td["state"].tolist(), td["done"].item()
    ([[0.0, 0.0, 1.0]], False)
    >>> td["agents", "action"] = torch.tensor([[1, 1]])
    >>> env.step(td)["next", "reward"].item()
    8.0
    """

    terminal_phase = 3
    episode_limit = 2

    def __init__(self, payoff_2a: torch.Tensor, payoff_2b: torch.Tensor, num_envs: int = 1, device="cpu"):
        super().__init__(2, 2, 3, num_envs, device)
        self.payoffs = torch.stack([payoff_2a, payoff_2b]).to(device=self.device, dtype=torch.float32)
        self._one_hot = torch.cat([torch.eye(3), torch.zeros(1, 3)]).to(self.device)

    def _state_of(self, phase: torch.Tensor) -> torch.Tensor:
        return self._one_hot[phase]

    def _transition(self, phase, action):
        a0, a1 = action[..., 0], action[..., 1]
        second = (phase == 1) | (phase == 2)
        reward = self.payoffs[(phase - 1).clamp(0, 1), a0, a1] * second
        return reward, torch.where(phase == 0, 1 + a0, torch.full_like(phase, self.terminal_phase))


@ENV_FAMILIES.register("matrix")
def make_matrix_env(cfg: MatrixOneStepConfig | MatrixTwoStepConfig, num_envs: int, device) -> EnvBase:
    """Build a matrix game from its config (see the module docstring) with the standard face.

    >>> make_matrix_env(MatrixOneStepConfig(payoff=[1, 2]), 1, "cpu")
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: payoff needs one axis per agent (>= 2 dims), got shape (2,)
    """
    if isinstance(cfg, MatrixTwoStepConfig):
        payoffs = [payoff_tensor(getattr(cfg, k), k) for k in ("payoff_2a", "payoff_2b")]
        for k, p in zip(("payoff_2a", "payoff_2b"), payoffs):
            if tuple(p.shape) != (2, 2):
                raise ConfigError(f"{k} must be 2x2 (2 agents, 2 actions), got shape {tuple(p.shape)}")
        env = TwoStepGame(*payoffs, num_envs=num_envs, device=device)
    else:
        payoff = payoff_tensor(cfg.payoff, "payoff")
        shape = tuple(payoff.shape)
        if payoff.ndim < 2:
            raise ConfigError(f"payoff needs one axis per agent (>= 2 dims), got shape {shape}")
        if len(set(shape)) != 1:
            raise ConfigError(f"payoff must be a hypercube (every agent has the same number of actions), got shape {shape}")
        for key, size in (("n_agents", len(shape)), ("n_actions", shape[0])):
            if getattr(cfg, key) is not None and getattr(cfg, key) != size:
                raise ConfigError(f"{key}={getattr(cfg, key)!r} disagrees with the payoff's shape {shape} ({key}={size})")
        env = OneStepGame(payoff, num_envs=num_envs, device=device)
    return standard_face(env, max_steps=cfg.max_steps)
