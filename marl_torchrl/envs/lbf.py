"""Level-Based Foraging (family ``"lbf"``, task = a gymnasium id such as ``Foraging-8x8-2p-2f-coop-v3``).

``lbforaging`` registers gymnasium envs with tuple observations and actions and no TorchRL wrapper, so
this module has its own: :class:`LBFEnv` steps ``num_envs`` copies (a Python loop over copies, batch
``[E]``) and gives the standard face: ``("agents", "observation")`` ``[E, A, F]``, ``"state"`` = the
observations concatenated, ``("agents", "action_mask")`` ``[E, A, 6]`` from LBF's valid moves, per-agent
rewards under ``("agents", "reward")`` turned into the team reward (``team_reward: mean | sum``),
``terminated`` when all food is eaten and ``truncated`` at LBF's own step limit (50 for the registered ids).

Needs the ``lbf`` extra: ``pip install "marl-torchrl[lbf]"``.

>>> from marl_torchrl.envs import describe, make_env
>>> env = make_env({"family": "lbf", "task": "Foraging-8x8-2p-2f-coop-v3", "num_envs": 2}, seed=0)
>>> info = describe(env)
>>> info.n_agents, info.obs_dim, info.n_actions, info.has_action_mask, info.max_steps
(2, 12, 6, True, 50)
"""
from __future__ import annotations

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from marl_torchrl import keys
from marl_torchrl.envs.copies import LoopedCopies
from marl_torchrl.config.envs import LBFConfig
from marl_torchrl.envs.face import standard_face
from marl_torchrl.registry import ENV_FAMILIES, ConfigError


def _gym_make(task: str):
    try:
        import gymnasium as gym
        import lbforaging  # noqa: F401  (registers the Foraging-* ids)
    except ImportError as err:
        raise ConfigError(f"env family 'lbf' needs the lbf extra: pip install \"marl-torchrl[lbf]\" ({err})") from None
    if task not in gym.registry:
        known = [k for k in gym.registry if k.startswith("Foraging")]
        raise ConfigError(f"unknown LBF id {task!r}; e.g. {', '.join(known[:4])} ... ({len(known)} registered)")
    return gym.make(task)


class LBFEnv(LoopedCopies):
    """``num_envs`` copies of one LBF gymnasium env behind a batched TorchRL face.

    >>> env = LBFEnv("Foraging-8x8-2p-2f-coop-v3", num_envs=3)
    >>> env.reset()["agents", "action_mask"].shape
    torch.Size([3, 2, 6])
    >>> obs = LBFEnv("Foraging-8x8-2p-2f-coop-v3", scale_observations=True).reset()["agents", "observation"]
    >>> bool(obs.min() >= 0) and bool(obs.max() <= 1)
    True
    """

    def __init__(self, task: str, num_envs: int = 1, device="cpu", scale_observations: bool = False):
        super().__init__(batch_size=torch.Size([num_envs]), device=device)
        self.envs = [_gym_make(task) for _ in range(num_envs)]
        base = self.envs[0].unwrapped
        self.n_agents = base.n_agents
        self.n_actions = int(base.action_space[0].n)
        self.episode_limit = int(base._max_episode_steps)
        obs_dim = int(base.observation_space[0].shape[0])
        low, high = (np.stack([getattr(s, b) for s in base.observation_space]).astype(np.float32)
                     for b in ("low", "high"))
        # raw: x; scaled: (x - low) / (high - low), every feature in [0, 1] (LBF's bounds: -1 = not seen)
        self._shift, self._scale = (low, 1.0 / np.maximum(high - low, 1e-6)) if scale_observations else (0.0, 1.0)
        e, a = num_envs, self.n_agents
        self.full_observation_spec = Composite(
            agents=Composite(
                observation=Unbounded(shape=(e, a, obs_dim), device=device),
                action_mask=Categorical(2, shape=(e, a, self.n_actions), dtype=torch.bool, device=device),
                shape=(e, a),
            ),
            state=Unbounded(shape=(e, a * obs_dim), device=device),
            shape=(e,),
        )
        self.full_action_spec = Composite(
            agents=Composite(action=Categorical(self.n_actions, shape=(e, a), dtype=torch.int64, device=device),
                             shape=(e, a)),
            shape=(e,),
        )
        self.full_reward_spec = Composite(
            agents=Composite(reward=Unbounded(shape=(e, a, 1), device=device), shape=(e, a)), shape=(e,)
        )
        flag = lambda: Categorical(2, shape=(e, 1), dtype=torch.bool, device=device)  # noqa: E731
        self.full_done_spec = Composite(done=flag(), terminated=flag(), truncated=flag(), shape=(e,))
        self._obs = np.zeros((e, a, obs_dim), dtype=np.float32)
        self._mask = np.zeros((e, a, self.n_actions), dtype=bool)

    def _read_mask(self, i: int) -> None:
        base = self.envs[i].unwrapped
        self._mask[i] = False
        for j, player in enumerate(base.players):
            self._mask[i, j, [act.value for act in base._valid_actions[player]]] = True

    def _observation(self) -> TensorDict:
        obs = torch.as_tensor((self._obs - self._shift) * self._scale, device=self.device)
        mask = torch.as_tensor(self._mask, device=self.device).clone()  # not a view of the buffer steps rewrite
        agents = TensorDict({keys.OBS[1]: obs.clone(), keys.ACTION_MASK[1]: mask}, batch_size=obs.shape[:-1])
        return TensorDict({keys.GROUP: agents, keys.STATE: obs.flatten(1)}, batch_size=self.batch_size)

    def _reset(self, tensordict: TensorDictBase | None, **kwargs) -> TensorDictBase:
        for i, seed in self.copies_to_reset(tensordict):
            obs, _ = self.envs[i].reset(seed=seed)
            self._obs[i] = np.stack(obs)
            self._read_mask(i)
        out = self._observation()
        done = torch.zeros(*self.batch_size, 1, dtype=torch.bool, device=self.device)
        out.update({keys.DONE: done, keys.TERMINATED: done.clone(), keys.TRUNCATED: done.clone()})
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        actions = tensordict.get(keys.ACTION).cpu().numpy()
        e, a = actions.shape
        rewards = np.zeros((e, a, 1), dtype=np.float32)
        term, trunc = np.zeros((e, 1), dtype=bool), np.zeros((e, 1), dtype=bool)
        for i, env in enumerate(self.envs):
            obs, reward, term[i, 0], trunc[i, 0], _ = env.step(tuple(int(x) for x in actions[i]))
            self._obs[i], rewards[i, :, 0] = np.stack(obs), reward
            self._read_mask(i)
        out = self._observation()
        terminated = torch.as_tensor(term, device=self.device)
        truncated = torch.as_tensor(trunc, device=self.device) & ~terminated
        out.set(("agents", "reward"), torch.as_tensor(rewards, device=self.device))
        out.update({keys.DONE: terminated | truncated, keys.TERMINATED: terminated, keys.TRUNCATED: truncated})
        return out


@ENV_FAMILIES.register("lbf")
def make_lbf_env(cfg: LBFConfig, num_envs: int, device) -> EnvBase:
    """Build ``num_envs`` copies of the LBF id in ``cfg['task']`` with the standard face.

    >>> make_lbf_env(LBFConfig(task="Foraging-8x8-2p-2f-coop-v9"), 1, "cpu")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: unknown LBF id 'Foraging-8x8-2p-2f-coop-v9'; e.g. ...
    """
    env = LBFEnv(cfg.task, num_envs, device=device, scale_observations=cfg.scale_observations)
    return standard_face(env, max_steps=cfg.max_steps, team_reward=cfg.team_reward)
