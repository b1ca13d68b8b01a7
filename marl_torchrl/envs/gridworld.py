"""GridWorld25 (family ``"gridworld"``, task ``gridworld25``): cooperative foraging on a 25x25 grid,
written for this project as one vectorised torch env (batch ``[E]``, thousands of envs, any device).

Rules:

- **World.** A ``size x size`` grid (25) with ``n_agents`` agents (4) and ``n_food`` food items (4). At
  reset agents and food take distinct random cells. Agents may later share cells.
- **Actions** (6 per agent): 0 no-op, 1 up (y + 1), 2 down (y - 1), 3 left (x - 1), 4 right (x + 1),
  5 collect. The grid's border is a wall: a move that would leave the grid keeps the agent in place.
  Moves happen first, then collection.
- **Collecting.** An agent that plays *collect* while standing on or next to (8-neighbourhood) a food
  item still on the grid takes part in collecting it; the item is collected when at least
  ``agents_to_collect`` (1) agents do so in the same step, and disappears. Each collected item pays
  ``food_reward`` (1.0) to the team; every step also costs ``step_cost`` (0.01) to the team. The
  reward is a single team reward.
- **End.** The episode *terminates* when all food is collected, and is *truncated* at ``max_steps``
  (100).
- **Observation** (18 per agent, coordinates divided by ``size - 1``): own position (2); for each of the
  4 food items its offset from the agent (2) and whether it is still there (1), offsets 0 once
  collected (12); the offset to the nearest other agent (2); whether the agent could collect now (1);
  the fraction of the time limit used (1). In general ``3 F + 6``.
- **State** (``2 A + 3 F + 1``, 21): all agents' and food positions (scaled), food presence, and the
  fraction of the time limit used.
- **Items collected** (root ``"items_collected"`` ``[E, 1]``): the food items collected so far in the
  episode; read on an episode's last step it is the episode's count (``episode_metric_keys``: logged as
  ``rollout/items_collected`` and ``eval/items_collected``). The return is this count x ``food_reward``
  minus ``step_cost`` x the episode's length.

>>> from marl_torchrl.envs import describe, make_env
>>> env = make_env({"family": "gridworld", "task": "gridworld25", "num_envs": 3}, seed=0)
>>> info = describe(env)
>>> info.n_agents, info.obs_dim, info.n_actions, info.state_dim, info.max_steps
(4, 18, 6, 21, 100)
"""
from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from marl_torchrl import keys
from marl_torchrl.config.envs import GridWorldConfig
from marl_torchrl.envs.face import standard_face
from marl_torchrl.envs.gridworld_blocks import GridSeedBlocks
from marl_torchrl.registry import ENV_FAMILIES, ConfigError

# no-op, up, down, left, right, collect
MOVES = torch.tensor([[0, 0], [0, 1], [0, -1], [-1, 0], [1, 0], [0, 0]])
COLLECT = 5
ITEMS = "items_collected"
OPTIONS = ("size", "n_agents", "n_food", "agents_to_collect", "food_reward", "step_cost")  # GridWorldConfig keys


class GridWorld25(EnvBase):
    """The vectorised GridWorld25 env (rules in the module docstring); batch ``[num_envs]``.

    >>> env = GridWorld25(num_envs=2, size=5, n_agents=2, n_food=1)
    >>> td = env.reset()
    >>> td["agents", "observation"].shape, td["state"].shape
    (torch.Size([2, 2, 9]), torch.Size([2, 8]))
    >>> td["items_collected"].tolist()
    [[0.0], [0.0]]
    """

    episode_metric_keys = {"items_collected": "items_collected"}

    def __init__(self, num_envs: int = 1, *, size: int = 25, n_agents: int = 4, n_food: int = 4,
                 agents_to_collect: int = 1, food_reward: float = 1.0, step_cost: float = 0.01, time_limit: int = 100,
                 device="cpu"):
        super().__init__(batch_size=torch.Size([num_envs]), device=device)
        if size < 2 or n_agents < 1 or n_food < 1 or n_agents + n_food > size * size:
            raise ConfigError(f"gridworld needs size >= 2 and n_agents + n_food <= size^2, got {size}, {n_agents}, {n_food}")
        if not 1 <= agents_to_collect <= n_agents:
            raise ConfigError(f"agents_to_collect must be in [1, n_agents={n_agents}], got {agents_to_collect}")
        self.size, self.n_agents, self.n_food, self.agents_to_collect = size, n_agents, n_food, agents_to_collect
        self.food_reward, self.step_cost = float(food_reward), float(step_cost)
        e, a, f = num_envs, n_agents, n_food
        obs_dim, state_dim = 3 * n_food + 6, 2 * n_agents + 3 * n_food + 1
        self.full_observation_spec = Composite(
            agents=Composite(observation=Bounded(-1.0, 1.0, shape=(e, a, obs_dim), device=device), shape=(e, a)),
            state=Bounded(0.0, 1.0, shape=(e, state_dim), device=device),
            items_collected=Bounded(0.0, float(f), shape=(e, 1), device=device),
            shape=(e,),
        )
        self.full_action_spec = Composite(
            agents=Composite(action=Categorical(6, shape=(e, a), dtype=torch.int64, device=device), shape=(e, a)),
            shape=(e,),
        )
        self.full_reward_spec = Composite(reward=Unbounded(shape=(e, 1), device=device), shape=(e,))
        flag = lambda: Categorical(2, shape=(e, 1), dtype=torch.bool, device=device)  # noqa: E731
        self.full_done_spec = Composite(done=flag(), terminated=flag(), truncated=flag(), shape=(e,))
        self.agent_pos = torch.zeros(e, a, 2, dtype=torch.long, device=device)
        self.food_pos = torch.zeros(e, f, 2, dtype=torch.long, device=device)
        self.present = torch.zeros(e, f, dtype=torch.bool, device=device)
        self.t = torch.zeros(e, dtype=torch.long, device=device)
        self.time_limit = int(time_limit)  # scales the time feature; the face's StepCounter truncates
        self._moves = MOVES.to(device)
        self._gen = torch.Generator(device=device)
        self._gen.manual_seed(0)

    # -- rules ------------------------------------------------------------------------------------
    def _draw(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """``[n, A + F, 2]`` distinct random cells (agents first) for ``n`` envs: one draw from ``gen``."""
        cells = torch.rand(n, self.size * self.size, generator=gen, device=self.device).argsort(-1)
        cells = cells[:, : self.n_agents + self.n_food]
        return torch.stack([cells % self.size, cells // self.size], dim=-1)

    def _place(self, envs: torch.Tensor) -> None:
        """Distinct random cells for the agents and food of the envs in ``envs`` (indices)."""
        if len(envs) == 0:
            return
        xy = self._draw(len(envs), self._gen) if self._blocks is None else self._blocks.draw(envs)
        self.agent_pos[envs] = xy[:, : self.n_agents]
        self.food_pos[envs] = xy[:, self.n_agents:]
        self.present[envs] = True
        self.t[envs] = 0

    def _can_collect(self) -> torch.Tensor:
        """``[E, A, F]``: agent next to (or on) a food item that is still there."""
        gap = (self.agent_pos.unsqueeze(2) - self.food_pos.unsqueeze(1)).abs().amax(-1)
        return (gap <= 1) & self.present.unsqueeze(1)

    def _observe(self) -> TensorDict:
        scale = float(self.size - 1)
        pos = self.agent_pos.float() / scale  # [E, A, 2]
        food = self.food_pos.float() / scale  # [E, F, 2]
        here = self.present.unsqueeze(1).float()  # [E, 1, F]
        offsets = (food.unsqueeze(1) - pos.unsqueeze(2)) * here.unsqueeze(-1)  # [E, A, F, 2]
        food_feats = torch.cat([offsets, here.expand(-1, self.n_agents, -1).unsqueeze(-1)], -1).flatten(2)
        rel = pos.unsqueeze(1) - pos.unsqueeze(2)  # [E, A, A, 2]: other minus self
        dist = rel.abs().sum(-1) + torch.eye(self.n_agents, device=self.device) * 1e3  # exclude self
        nearest = rel.gather(2, dist.argmin(-1)[..., None, None].expand(-1, -1, 1, 2)).squeeze(2)
        if self.n_agents == 1:
            nearest = torch.zeros_like(nearest)
        can = self._can_collect().any(-1, keepdim=True).float()
        time = (self.t.float() / self.time_limit).clamp(max=1.0).unsqueeze(-1)  # [E, 1]
        obs = torch.cat([pos, food_feats, nearest, can, time.unsqueeze(1).expand(-1, self.n_agents, 1)], dim=-1)
        state = torch.cat([pos.flatten(1), food.flatten(1), self.present.float(), time], dim=-1)
        agents = TensorDict({keys.OBS[1]: obs}, batch_size=obs.shape[:-1])
        items = (self.n_food - self.present.sum(-1, keepdim=True)).float()  # [E, 1]
        return TensorDict({keys.GROUP: agents, keys.STATE: state, ITEMS: items}, batch_size=self.batch_size)

    def _reset(self, tensordict: TensorDictBase | None, **kwargs) -> TensorDictBase:
        if tensordict is not None and "_reset" in tensordict.keys():
            envs = tensordict.get("_reset").view(-1).nonzero().squeeze(-1)
        else:
            envs = torch.arange(self.batch_size[0], device=self.device)
        self._place(envs)
        out = self._observe()
        done = (~self.present.any(-1)).unsqueeze(-1)
        out.update({keys.DONE: done, keys.TERMINATED: done.clone(), keys.TRUNCATED: torch.zeros_like(done)})
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = tensordict.get(keys.ACTION)  # [E, A]
        self.agent_pos = (self.agent_pos + self._moves[action]).clamp(0, self.size - 1)
        collectors = (self._can_collect() & (action == COLLECT).unsqueeze(-1)).sum(1)  # [E, F]
        collected = collectors >= self.agents_to_collect
        self.present &= ~collected
        self.t += 1
        reward = collected.sum(-1, keepdim=True).float() * self.food_reward - self.step_cost
        out = self._observe()
        terminated = (~self.present.any(-1)).unsqueeze(-1)
        out.update({keys.REWARD: reward, keys.DONE: terminated, keys.TERMINATED: terminated.clone(),
                    keys.TRUNCATED: torch.zeros_like(terminated)})
        return out

    def _set_seed(self, seed: int | None) -> None:
        self._gen.manual_seed(0 if seed is None else int(seed))

    supports_seed_blocks = True  # K seeds' envs as one env (num_seeds=K): see reset_blocks_from
    _blocks = None  # a GridSeedBlocks once reset_blocks_from is called

    def reset_blocks_from(self, sources, rng) -> None:
        """Hold K seeds' envs as blocks of E: block ``k`` draws its resets as ``sources[k]`` (seed ``k``'s own
        E-env GridWorld25, never stepped) would, from its generator (``rng``: unused, nothing else draws)
        (:class:`~marl_torchrl.envs.gridworld_blocks.GridSeedBlocks`, which has an example)."""
        self._blocks = GridSeedBlocks(self, sources, rng)


@ENV_FAMILIES.register("gridworld")
def make_gridworld_env(cfg: GridWorldConfig, num_envs: int, device) -> EnvBase:
    """Build GridWorld25 from its :class:`~marl_torchrl.config.envs.GridWorldConfig` with the standard face.

    >>> env = make_gridworld_env(GridWorldConfig(size=5, n_agents=2, n_food=1), 2, "cpu")
    >>> env.reset()["agents", "observation"].shape
    torch.Size([2, 2, 9])
    """
    if cfg.task != "gridworld25":
        raise ConfigError(f"unknown gridworld task {cfg.task!r}; known: gridworld25")
    options = {k: getattr(cfg, k) for k in OPTIONS}
    env = GridWorld25(num_envs, device=device, time_limit=cfg.max_steps or 100, **options)
    return standard_face(env, max_steps=cfg.max_steps)
