"""Any parallel PettingZoo env (family ``"pettingzoo"``) with the standard face.

``task`` is a module path, imported and built with ``module.parallel_env(**kwargs)``:
``mpe2.simple_spread_v3``, ``pettingzoo.sisl.pursuit_v5`` or your own module. Short forms: ``mpe/<name>``
(and ``pettingzoo.mpe.<name>``) -> ``mpe2.<name>`` (MPE moved to the ``mpe2`` package); ``<family>/<name>``
-> ``pettingzoo.<family>.<name>``.

:class:`PettingZooBatch` loops over ``num_envs`` copies in one process (batch ``[E]``; 3-8x the frames/s
of torchrl's ``SerialEnv`` of ``PettingZooWrapper`` at E = 8-64). All agents form one group ``"agents"``
and must share observation and action spaces. ``("agents", "observation")`` ``[E, A, F]`` (flattened,
float32); root ``"state"`` ``[E, S]`` from the env's ``state()``, else the observations concatenated;
``("agents", "action_mask")`` bool ``[E, A, n]`` where the env gives ``action_mask`` (in dict observations
or infos); actions ``Categorical(n)`` int64 ``[E, A]`` or ``Bounded`` float32 ``[E, A, d]``; per-agent
rewards ``("agents", "reward")`` ``[E, A, 1]`` -> the team reward (``team_reward: mean | sum``). An
episode ends when every agent is done: ``terminated`` if any agent terminated on that step, else
``truncated`` (``max_cycles``), never both. Agents that leave early get zero observations and rewards and
all-true masks until the episode ends.

Config keys: the common ones, ``kwargs`` (for ``parallel_env``; its ``max_cycles``, else
``env.unwrapped.max_cycles``, is the time limit :func:`~marl_torchrl.envs.describe` reports) and
``parallel`` (``serial``, the default, or ``process``: torchrl's ``ParallelEnv``, a worker process per
copy, seeded by torchrl). Serial copy ``i`` of ``make_env(cfg, seed=s)`` is reset with seed ``1000 * s + i``.
Random actions (``env.rand_action``) ignore masks. Needs the ``pettingzoo`` extra.

>>> from marl_torchrl.envs import describe, make_env
>>> env = make_env({"family": "pettingzoo", "task": "mpe2.simple_spread_v3", "num_envs": 2,
...                 "kwargs": {"N": 3, "max_cycles": 25}}, seed=0)
>>> info = describe(env)
>>> info.n_agents, info.obs_dim, info.state_dim, info.n_actions, info.has_action_mask, info.max_steps
(3, 18, 54, 5, False, 25)
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Mapping

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase, ParallelEnv

from marl_torchrl import keys
from marl_torchrl.envs.copies import LoopedCopies
from marl_torchrl.config.envs import PettingZooConfig
from marl_torchrl.envs.face import standard_face
from marl_torchrl.registry import ENV_FAMILIES, ConfigError



def resolve_task(task: str) -> str:
    """The module path of a task name (full paths pass through; see the module docstring for short forms).

    >>> resolve_task("mpe/simple_spread_v3"), resolve_task("sisl/pursuit_v5"), resolve_task("mpe2.simple_v3")
    ('mpe2.simple_spread_v3', 'pettingzoo.sisl.pursuit_v5', 'mpe2.simple_v3')
    """
    family, slash, name = task.partition("/")
    if slash:
        return f"mpe2.{name}" if family == "mpe" else f"pettingzoo.{family}.{name}"
    return "mpe2." + task[len("pettingzoo.mpe."):] if task.startswith("pettingzoo.mpe.") else task


def load_task(task: str):
    """Import a task's module; one-line :class:`ConfigError` if the extra, the task or its packages are missing.

    >>> load_task("mpe/simple_spred_v3")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: unknown PettingZoo task 'mpe/simple_spred_v3' (no module mpe2.simple_spred_v3; mpe2 has: ..., simple_spread_v3, ...)
    """
    path = resolve_task(task)
    try:
        for extra in ("pettingzoo", "mpe2") if path.split(".")[0] == "mpe2" else ("pettingzoo",):
            importlib.import_module(extra)
    except ImportError as err:
        raise ConfigError("env family 'pettingzoo' needs the pettingzoo extra: "
                          f"pip install \"marl-torchrl[pettingzoo]\" ({err})") from None
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as err:
        if err.name and (path + ".").startswith(err.name + "."):
            raise ConfigError(f"unknown PettingZoo task {task!r} (no module {path}{_siblings(path)})") from None
        raise ConfigError(f"PettingZoo task {task!r} needs a package that is not installed: {err}") from None
    except (ImportError, AttributeError) as err:  # e.g. pettingzoo's deprecated or removed envs
        raise ConfigError(f"PettingZoo task {task!r} cannot be loaded: {err}") from None
    if not callable(getattr(module, "parallel_env", None)):
        raise ConfigError(f"unknown PettingZoo task {task!r}: module {path} has no parallel_env")
    return module


def _siblings(path: str) -> str:
    parent = path.rpartition(".")[0]
    try:
        names = [m.name for m in pkgutil.iter_modules(importlib.import_module(parent).__path__)
                 if re.fullmatch(r"[a-z_]+_v[0-9]+", m.name)]
    except (ImportError, AttributeError, ValueError):
        return ""
    return f"; {parent} has: {', '.join(sorted(names))}" if names else ""


def _spaces(env, agents: list, name: str):
    """Each agent's (observation, action) space, checked: the same kinds and sizes, Box obs, Discrete/Box actions."""
    spaces = [(env.observation_space(a), env.action_space(a)) for a in agents]
    spaces = [(o["observation"] if isinstance(getattr(o, "spaces", None), Mapping) and "observation" in o.spaces
               else o, act) for o, act in spaces]  # dict observations: the "observation" part
    for what, i in (("observation", 0), ("action", 1)):
        kinds = {a: (type(s[i]).__name__, s[i].shape, getattr(s[i], "n", None)) for a, s in zip(agents, spaces)}
        if len(set(kinds.values())) > 1:
            listed = ", ".join(f"{a}: {v}" for a, v in kinds.items())
            raise ConfigError(f"{name}: agents differ in {what} space ({listed})")
    obs, act = spaces[0]
    if type(obs).__name__ != "Box" or type(act).__name__ not in ("Discrete", "Box"):
        raise ConfigError(f"{name}: only Box observations and Discrete or Box actions are supported, got {obs}, {act}")
    return spaces


class PettingZooBatch(LoopedCopies):
    """``num_envs`` copies of one parallel PettingZoo env behind the face (``num_envs=None``: no batch dim).

    >>> import mpe2.simple_spread_v3 as m
    >>> env = PettingZooBatch(lambda: m.parallel_env(max_cycles=10), num_envs=4)
    >>> env.reset()["agents", "observation"].shape, env.episode_limit, env.has_state
    (torch.Size([4, 3, 18]), 10, True)
    """

    def __init__(self, make, num_envs: int | None = 1, device="cpu", name: str = "env", episode_limit=None):
        super().__init__(batch_size=torch.Size([num_envs] if num_envs else []), device=device)
        self.envs = [make() for _ in range(num_envs or 1)]
        first, self.agents = self.envs[0], list(self.envs[0].possible_agents)
        spaces = _spaces(first, self.agents, name)
        obs_space, act_space = spaces[0]
        self.discrete, self.obs_dim = hasattr(act_space, "n"), int(np.prod(obs_space.shape))
        n_act, self._start = (int(act_space.n), int(getattr(act_space, "start", 0))) if self.discrete else (0, 0)
        obs, infos = first.reset()
        self.has_mask = self.discrete and any(isinstance(x, Mapping) and "action_mask" in x
                                              for x in [*obs.values(), *infos.values()])
        try:
            state_dim = int(np.asarray(first.state()).size)
        except (NotImplementedError, AttributeError, TypeError):  # no state(), or not a method
            state_dim = None
        self.has_state = state_dim is not None
        self.episode_limit = episode_limit or getattr(first.unwrapped, "max_cycles", None)
        e, a, b, dev = len(self.envs), len(self.agents), tuple(self.batch_size), device
        group = {keys.OBS[1]: Unbounded(shape=(*b, a, self.obs_dim), device=dev)}
        if self.has_mask:
            group[keys.ACTION_MASK[1]] = Categorical(2, shape=(*b, a, n_act), dtype=torch.bool, device=dev)
        spec = {keys.GROUP: Composite(group, shape=(*b, a))}
        if self.has_state:
            spec[keys.STATE] = Unbounded(shape=(*b, state_dim), device=dev)
        self.full_observation_spec = Composite(spec, shape=b)
        if self.discrete:
            action = Categorical(n_act, shape=(*b, a), dtype=torch.int64, device=dev)
        else:
            low, high = (torch.as_tensor(np.stack([getattr(s[1], x) for s in spaces]), dtype=torch.float32)
                         for x in ("low", "high"))
            action = Bounded(low.expand(*b, *low.shape), high.expand(*b, *low.shape), shape=(*b, *low.shape), device=dev)
        self.full_action_spec = Composite({keys.GROUP: Composite(action=action, shape=(*b, a))}, shape=b)
        reward = Unbounded(shape=(*b, a, 1), device=dev)
        self.full_reward_spec = Composite({keys.GROUP: Composite(reward=reward, shape=(*b, a))}, shape=b)
        flag = lambda: Categorical(2, shape=(*b, 1), dtype=torch.bool, device=dev)  # noqa: E731
        self.full_done_spec = Composite(done=flag(), terminated=flag(), truncated=flag(), shape=b)
        self._obs = np.zeros((e, a, self.obs_dim), dtype=np.float32)
        self._mask = np.ones((e, a, n_act if self.has_mask else 0), dtype=bool)
        self._state = np.zeros((e, state_dim or 0), dtype=np.float32)

    def _read(self, i: int, obs: Mapping, infos: Mapping) -> None:
        self._obs[i], self._mask[i] = 0.0, True
        for j, agent in enumerate(self.agents):
            if agent not in obs:
                continue
            o = obs[agent]
            self._obs[i, j] = np.asarray(o["observation"] if isinstance(o, Mapping) else o, np.float32).reshape(-1)
            if self.has_mask:
                src = o if isinstance(o, Mapping) and "action_mask" in o else infos.get(agent, {})
                self._mask[i, j] = np.asarray(src.get("action_mask", True), dtype=bool)
        if self.has_state:
            self._state[i] = np.asarray(self.envs[i].state(), dtype=np.float32).reshape(-1)

    def _out(self, term: np.ndarray, trunc: np.ndarray, reward: np.ndarray | None = None) -> TensorDict:
        e, a = len(self.envs), len(self.agents)
        group = TensorDict({keys.OBS[1]: torch.as_tensor(self._obs).clone()}, batch_size=(e, a))
        if self.has_mask:
            group[keys.ACTION_MASK[1]] = torch.as_tensor(self._mask).clone()
        if reward is not None:
            group["reward"] = torch.as_tensor(reward)
        term, trunc = torch.as_tensor(term), torch.as_tensor(trunc)
        out = TensorDict({keys.GROUP: group, keys.DONE: term | trunc, keys.TERMINATED: term, keys.TRUNCATED: trunc},
                         batch_size=(e,))
        if self.has_state:
            out[keys.STATE] = torch.as_tensor(self._state).clone()
        out = out.to(self.device)
        return out if self.batch_size else out.squeeze(0)

    def _reset(self, tensordict: TensorDictBase | None, **kwargs) -> TensorDictBase:
        for i, seed in self.copies_to_reset(tensordict):
            self._read(i, *self.envs[i].reset(seed=seed))
        no = np.zeros((len(self.envs), 1), dtype=bool)
        return self._out(no, no.copy())

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        e, a = len(self.envs), len(self.agents)
        actions = tensordict.get(keys.ACTION).reshape(e, a, -1).cpu().numpy()
        rewards = np.zeros((e, a, 1), dtype=np.float32)
        term, trunc = np.zeros((e, 1), dtype=bool), np.zeros((e, 1), dtype=bool)
        for i, env in enumerate(self.envs):
            live = set(env.agents)  # agents that left earlier get no action
            act = {g: int(actions[i, j, 0]) + self._start if self.discrete else actions[i, j]
                   for j, g in enumerate(self.agents) if g in live}
            obs, rew, te, tr, infos = env.step(act)
            self._read(i, obs, infos)
            rewards[i, :, 0] = [rew.get(g, 0.0) for g in self.agents]
            if not env.agents or all(te.get(g, False) or tr.get(g, False) for g in act):  # the episode is over
                term[i, 0] = any(te.values())
                trunc[i, 0] = not term[i, 0]
        return self._out(term, trunc, rewards)


@ENV_FAMILIES.register("pettingzoo")
def make_pettingzoo_env(cfg: PettingZooConfig, num_envs: int, device) -> EnvBase:
    """Build ``num_envs`` copies of the parallel PettingZoo env in ``cfg['task']`` with the standard face.

    >>> make_pettingzoo_env(PettingZooConfig(task="mpe/simple_spread_v3", kwargs={"M": 2}), 1, "cpu")
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: bad kwargs for PettingZoo task 'mpe/simple_spread_v3': raw_env.__init__() got an unexpected keyword argument 'M'
    """
    task, kwargs, parallel = cfg.task, dict(cfg.kwargs), cfg.parallel
    module = load_task(task)

    def make():
        try:
            return module.parallel_env(**kwargs)
        except (TypeError, ValueError, AssertionError) as err:  # PettingZoo envs check their arguments with assert
            message = (str(err) or repr(err)).splitlines()[0]
            raise ConfigError(f"bad kwargs for PettingZoo task {task!r}: {message}") from None

    limit, name = kwargs.get("max_cycles"), f"PettingZoo task {task!r}"
    env = probe = PettingZooBatch(make, num_envs if parallel == "serial" else None, device, name, limit)
    if parallel == "process":
        env = ParallelEnv(num_envs, lambda: PettingZooBatch(make, None, device, name, limit), device=device)
        env.episode_limit = probe.episode_limit
    return standard_face(env, max_steps=cfg.max_steps, team_reward=cfg.team_reward,
                         state_from_obs=not probe.has_state)
