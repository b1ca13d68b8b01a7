"""SMAX, JaxMARL's StarCraft-like micromanagement (family ``"smax"``, task = a map name such as ``3m``).

:class:`SMAXEnv` steps ``num_envs`` copies of ``HeuristicEnemySMAX`` (allies learn, enemies follow
SMAX's heuristic) with one ``jax.jit(jax.vmap(...))`` call per reset and per step; arrays cross between
jax and torch by DLPack, sharing memory (jax runs on the GPU only when the env's device is cuda and jax
has one; otherwise on CPU, and tensors move with ``.to(device)``).

The face: ``("agents", "observation")`` ``[E, A, F]``, ``"state"`` = SMAX's world state ``[E, S]``
scaled to about [0, 1] (positions / map size, weapon cooldown / 10, unit type ids / #types: raw positions
up to 32 made QMIX's hypernetwork mixer diverge),
``("agents", "action")`` ``Categorical(n)``, ``("agents", "action_mask")`` ``[E, A, n]`` from
``get_avail_actions`` (stop is always available; a dead agent has only stop), per-agent rewards
``("agents", "reward")`` turned into the team reward (``team_reward: mean | sum``; SMAX gives every ally
the same team reward, so ``mean`` is it), ``terminated`` when a side is eliminated, ``truncated`` at the
step limit, and root ``"battle_won"`` ``[E, 1]`` (True on the last step of a won episode: every enemy
dead, an ally alive).

SMAX ignores the mask: an unavailable attack (target dead or out of range) does nothing and does not
move the unit, i.e. it acts as stop; dead units neither move nor shoot.

Keys besides the common ones: ``task`` (any map ``map_name_to_scenario`` knows: ``3m``, ``2s3z``,
``5m_vs_6m``, ...), ``max_steps`` (the step limit, read off SMAX's step counter; null = SMAX's 100),
``see_enemy_actions``, ``walls_cause_death``, ``won_battle_bonus``, ``enemy_shoots``, ``attack_mode``
(``closest`` | ``random``: how the heuristic enemy picks targets). Needs the ``smax`` extra.

>>> from marl_torchrl.envs import describe, make_env
>>> env = make_env({"family": "smax", "task": "3m", "num_envs": 2}, seed=0)
>>> info = describe(env)
>>> info.n_agents, info.obs_dim, info.state_dim, info.n_actions, info.has_action_mask, info.max_steps
(3, 75, 72, 8, True, 100)
"""
from __future__ import annotations

import io
import os
import sys
from functools import lru_cache

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from marl_torchrl import keys
from marl_torchrl.config.envs import SMAXConfig
from marl_torchrl.envs.face import standard_face
from marl_torchrl.envs.smax_blocks import seed_block_streams
from marl_torchrl.registry import ENV_FAMILIES, ConfigError

# SMAX's and the heuristic enemy's keyword arguments, with SMAXConfig's defaults (the only ones)
OPTIONS = {k: getattr(SMAXConfig(), k) for k in
           ("see_enemy_actions", "walls_cause_death", "won_battle_bonus", "enemy_shoots", "attack_mode")}
BATTLE_WON = "battle_won"
STOP = 4  # SMAX's stop action: always available


def _import_smax():
    """``(jax, jaxmarl.environments.smax)``, imported quietly on CPU-friendly settings."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # never grab all GPU memory
    # jaxmarl prints on import and resets sys.stdout/stderr to sys.__stdout__/__stderr__: shield both
    streams = sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__
    sys.stdout = sys.stderr = sys.__stdout__ = sys.__stderr__ = io.StringIO()
    try:
        import jax
        import jaxmarl.environments.smax  # (binds the top-level name: fails if jaxmarl is masked out)
    except ImportError as err:
        raise ConfigError(
            f"env family 'smax' needs the smax extra: pip install \"marl-torchrl[smax]\" ({err})") from None
    finally:
        sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__ = streams
    return jax, jaxmarl.environments.smax


@lru_cache(maxsize=None)
def _game(task: str, options: tuple):
    """The SMAX env and its jitted batched ``reset``/``step`` (cached: one compilation per map, options and
    batch size; the step limit is an argument, so it needs none)."""
    jax, smax = _import_smax()
    jnp = jax.numpy
    try:
        scenario = smax.map_name_to_scenario(task)
    except KeyError:
        known = list(smax.smax_env.MAP_NAME_TO_SCENARIO)
        raise ConfigError(f"unknown SMAX map {task!r}; e.g. {', '.join(known[:6])} ... ({len(known)} known)") from None
    opts = dict(options)
    env = smax.HeuristicEnemySMAX(enemy_shoots=opts.pop("enemy_shoots"), attack_mode=opts.pop("attack_mode"),
                                  scenario=scenario, **opts)
    agents, n_allies, blanks = env.agents, env.num_allies, {}

    def view(s, limit):  # one env's face: obs, world state, mask, terminated, truncated, won
        unit = s.state
        allies_alive, enemies_alive = unit.unit_alive[:n_allies].any(), unit.unit_alive[n_allies:].any()
        terminated = ~allies_alive | ~enemies_alive
        obs, avail = env.get_obs(s), env.get_avail_actions(s)
        mask = jnp.stack([avail[a] for a in agents]).astype(bool)
        mask = mask.at[:, STOP].set(mask[:, STOP] | ~mask.any(-1))  # never a row without an action
        flags = jnp.stack([terminated, (unit.step >= limit) & ~terminated, allies_alive & ~enemies_alive])
        return jnp.stack([obs[a] for a in agents]), scaled_world_state(s), mask, flags[:, None]

    n_units, n_feat = env.num_allies + env.num_enemies, len(env.own_features)  # every unit, both teams
    n_types = max(len(env.unit_type_health) - 1, 1)
    # positions / map size; weapon cooldown (simulator ticks, up to about 8 for marines) / 10
    scale = jnp.ones(n_feat).at[1].set(1.0 / env.map_width).at[2].set(1.0 / env.map_height).at[3].set(0.1)

    def scaled_world_state(s):  # SMAX's world state, scaled to about [0, 1] (the mixers' input)
        ws = env.get_world_state(s)
        units = (ws[: n_units * n_feat].reshape(n_units, n_feat) * scale).reshape(-1)
        teams, types = ws[n_units * n_feat: n_units * (n_feat + 1)], ws[n_units * (n_feat + 1):]
        return jnp.concatenate([units, teams, types / n_types])

    def reset(keys, state, which, limit):  # keys: one per env
        _, fresh = jax.vmap(env.reset)(keys)
        pick = lambda new, old: jnp.where(which.reshape(which.shape + (1,) * (new.ndim - 1)), new, old)  # noqa: E731
        state = jax.tree.map(pick, fresh, state)
        return state, jax.vmap(view, in_axes=(0, None))(state, limit)

    def step(keys, state, actions, limit):  # keys: one per env
        def one(k, s, act):
            _, s, reward, _, _ = env.step_env(k, s, {a: act[i] for i, a in enumerate(agents)})
            return s, jnp.stack([reward[a] for a in agents])[:, None]

        state, reward = jax.vmap(one)(keys, state, actions)
        return state, reward, jax.vmap(view, in_axes=(0, None))(state, limit)

    def split(key, n):  # the env's next key and one key per env: every reset and step splits so
        key, sub = jax.random.split(key)
        return key, jax.random.split(sub, n)

    def reset_env(key, state, which, limit):
        key, keys = split(key, which.shape[0])
        return (key, *reset(keys, state, which, limit))

    def step_env(key, state, actions, limit):
        key, keys = split(key, actions.shape[0])
        return (key, *step(keys, state, actions, limit))

    def blank(n):  # a zero state of the right structure, replaced by the first reset
        if n not in blanks:
            key = jax.random.PRNGKey(0)
            blanks[n] = jax.eval_shape(lambda k: jax.vmap(env.reset)(jax.random.split(k, n))[1], key)
        return jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), blanks[n])

    return env, jax.jit(reset_env), jax.jit(step_env), blank, (reset, step, split)


class SMAXEnv(EnvBase):
    """``num_envs`` SMAX battles on one map against the heuristic enemy, behind a batched TorchRL face.

    ``episode_metric_keys``: the win flag, logged as ``rollout/battle_won`` and ``eval/battle_won``.

    ``max_steps`` is the episode limit (None: SMAX's 100), exposed as ``episode_limit``; ``options`` are
    :data:`OPTIONS` (SMAX's and the heuristic enemy's keyword arguments). Seed 0 unless ``set_seed``.

    >>> env = SMAXEnv("3m", num_envs=4)
    >>> td = env.reset()
    >>> td["agents", "observation"].shape, td["state"].shape, td["agents", "action_mask"].shape
    (torch.Size([4, 3, 75]), torch.Size([4, 72]), torch.Size([4, 3, 8]))
    """

    episode_metric_keys = {BATTLE_WON: BATTLE_WON}

    def __init__(self, task: str, num_envs: int = 1, device="cpu", max_steps: int | None = None, **options):
        super().__init__(batch_size=torch.Size([num_envs]), device=device)
        self._jax, _ = _import_smax()
        self._game_key = (task, tuple(sorted({**OPTIONS, **options}.items())))
        self.smax, self._reset_fn, self._step_fn, blank, self._core = _game(*self._game_key)
        gpus = [d for d in self._jax.devices() if d.platform == "gpu"] if self.device.type == "cuda" else []
        self._jax_device = gpus[self.device.index or 0] if gpus else self._jax.devices("cpu")[0]
        self._torch_side = self.device if gpus else torch.device("cpu")  # where tensors meet jax
        self.n_agents, self.episode_limit = self.smax.num_allies, int(max_steps or self.smax.max_steps)
        self.n_actions = int(self.smax.action_spaces[self.smax.agents[0]].n)
        e, a, n = num_envs, self.n_agents, self.n_actions
        self._set_seed(0)
        self._state = self._jax.device_put(blank(e), self._jax_device)
        self._limit = self._jax.device_put(self._jax.numpy.int32(self.episode_limit), self._jax_device)
        self._started = False
        flag = lambda: Categorical(2, shape=(e, 1), dtype=torch.bool, device=device)  # noqa: E731
        self.full_observation_spec = Composite(
            agents=Composite(
                observation=Unbounded(shape=(e, a, self.smax.obs_size), device=device),
                action_mask=Categorical(2, shape=(e, a, n), dtype=torch.bool, device=device),
                shape=(e, a),
            ),
            state=Unbounded(shape=(e, self.smax.state_size), device=device),
            battle_won=flag(),
            shape=(e,),
        )
        self.full_action_spec = Composite(
            agents=Composite(action=Categorical(n, shape=(e, a), dtype=torch.int64, device=device), shape=(e, a)),
            shape=(e,),
        )
        self.full_reward_spec = Composite(
            agents=Composite(reward=Unbounded(shape=(e, a, 1), device=device), shape=(e, a)), shape=(e,)
        )
        self.full_done_spec = Composite(done=flag(), terminated=flag(), truncated=flag(), shape=(e,))

    def _to_jax(self, t: torch.Tensor):
        return self._jax.device_put(self._jax.dlpack.from_dlpack(t.to(self._torch_side).contiguous()), self._jax_device)

    def _to_torch(self, x) -> torch.Tensor:
        return torch.from_dlpack(x).to(self.device)  # shares jax's buffer when the devices match

    def _output(self, view) -> TensorDict:
        obs, state, mask, flags = (self._to_torch(x) for x in view)
        agents = TensorDict({keys.OBS[1]: obs, keys.ACTION_MASK[1]: mask}, batch_size=obs.shape[:2])
        terminated, truncated, won = flags.unbind(1)
        return TensorDict({keys.GROUP: agents, keys.STATE: state, BATTLE_WON: won, keys.TERMINATED: terminated,
                           keys.TRUNCATED: truncated, keys.DONE: terminated | truncated}, batch_size=self.batch_size)

    def _reset(self, tensordict: TensorDictBase | None, **kwargs) -> TensorDictBase:
        which = torch.ones(self.batch_size, dtype=torch.bool)
        if self._started and tensordict is not None and "_reset" in tensordict.keys():
            which = tensordict.get("_reset").reshape(self.batch_size)
        self._key, self._state, view = self._reset_fn(self._key, self._state, self._to_jax(which), self._limit)
        self._started = True
        return self._output(view)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        actions = self._to_jax(tensordict.get(keys.ACTION).to(torch.int32))
        self._key, self._state, reward, view = self._step_fn(self._key, self._state, actions, self._limit)
        out = self._output(view)
        out.set(keys.AGENT_REWARD, self._to_torch(reward))
        return out

    def _set_seed(self, seed: int | None) -> None:
        key = self._jax.random.PRNGKey(0 if seed is None else int(seed))
        self._key = self._jax.device_put(key, getattr(self, "_jax_device", None))

    supports_seed_blocks = True  # K seeds' envs as one env (num_seeds=K): see reset_blocks_from

    def reset_blocks_from(self, sources, rng) -> None:
        """Hold K seeds' envs as blocks of E: block ``k`` resets and steps on ``sources[k]``'s (seed ``k``'s own
        E-env SMAXEnv, never stepped) key stream, one key per block split as that env splits its own (``rng``:
        unused, jax draws only from the keys) (:func:`~marl_torchrl.envs.smax_blocks.seed_block_streams`, which has an example)."""
        self._key, self._reset_fn, self._step_fn = seed_block_streams(self, sources)


@ENV_FAMILIES.register("smax")
def make_smax_env(cfg: SMAXConfig, num_envs: int, device) -> EnvBase:
    """Build ``num_envs`` SMAX battles on the map ``cfg['task']`` with the standard face.

    >>> make_smax_env(SMAXConfig(task="4m"), 1, "cpu")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: unknown SMAX map '4m'; e.g. 3m, 2s3z, 25m, ...
    """
    options = {k: getattr(cfg, k) for k in OPTIONS}
    env = SMAXEnv(cfg.task, num_envs, device=device, max_steps=cfg.max_steps, **options)
    return standard_face(env, team_reward=cfg.team_reward)
