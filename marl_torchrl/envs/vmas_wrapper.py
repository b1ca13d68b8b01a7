"""torchrl's ``VmasWrapper`` with cheaper steps and partial resets, for one homogeneous agent group.

torchrl's wrapper builds each step's output agent by agent (a TensorDict per agent, then a stack),
resets finished envs one at a time with VMAS's ``reset_at`` (each about as costly as resetting the whole
batch), and on every reset call walks all envs in a Python loop. At 256 envs these took about a third
of our collection time. :class:`FastVmasWrapper` produces the same TensorDicts (same keys, shapes,
dtypes and values; tested against ``VmasWrapper``) with one ``torch.stack`` per entry, and resets
finished envs from a :class:`~marl_torchrl.envs.vmas_reset.ResetPool` of fresh starts. It is used
when every agent is in one group with equal specs and tensor observations (what ``make_env`` builds for
VMAS); other groupings and dict observations go through ``VmasWrapper``'s own code.

>>> import vmas
>>> raw = vmas.make_env("balance", num_envs=4, device="cpu", continuous_actions=False, seed=0)
>>> env = FastVmasWrapper(raw, categorical_actions=True)
>>> td = env.rand_step(env.reset())["next"]
>>> td["agents", "observation"].shape, td["agents", "reward"].shape
(torch.Size([4, 3, 16]), torch.Size([4, 3, 1]))
>>> _ = env.reset(td.set("_reset", torch.tensor([[True], [False], [True], [False]])))
>>> env._env.steps.int().tolist()
[0, 1, 0, 1]
"""
from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Composite
from torchrl.envs.libs.vmas import VmasWrapper

from marl_torchrl.envs.vmas_reset import ResetPool


def _per_env(x: torch.Tensor, n_batch_dims: int) -> torch.Tensor:
    """Give a tensor that has only the batch dims a trailing dim of 1 (as torchrl's wrapper does)."""
    return x.unsqueeze(-1) if x.dim() == n_batch_dims else x


class FastVmasWrapper(VmasWrapper):
    """``VmasWrapper`` whose steps and resets build their outputs in one go (see the module docstring).

    Built like ``VmasWrapper``; the module docstring has an example.
    """

    _pool: ResetPool | None = None  # made at the first partial reset
    _order: list[int] | None = None  # VMAS agent indices in group order, when the fast path applies
    _blocks = None  # a VmasSeedBlocks when this env holds K seeds' blocks (reset_blocks_from)

    def _make_specs(self, env) -> None:
        super()._make_specs(env)
        (group, names), *more = self.group_map.items()
        fast = (not more and not self.het_specs and (self.continuous_actions or self.categorical_actions)
                and not isinstance(self.full_observation_spec_unbatched[group, "observation"], Composite))
        self._order = [self.agent_names_to_indices_map[n] for n in names] if fast else None

    def _pack(self, obs, dones, infos, rewards=None) -> TensorDictBase:
        """The step/reset output: ``done``/``terminated`` and the group's stacked entries."""
        nb = len(self.batch_size)
        order = self._order
        group = {"observation": torch.stack([_per_env(obs[i], nb) for i in order], nb)}
        if rewards is not None:
            group["reward"] = torch.stack([_per_env(rewards[i], nb) for i in order], nb)
        if len(infos[order[0]]):
            group["info"] = {k: torch.stack([_per_env(infos[i][k].to(torch.float32), nb) for i in order], nb)
                             for k in infos[order[0]]}
        done = _per_env(dones, nb)
        shape = (*self.batch_size, len(order))
        return TensorDict({"done": done, "terminated": done.clone(),
                           next(iter(self.group_map)): TensorDict(group, batch_size=shape, device=self.device)},
                          batch_size=self.batch_size, device=self.device)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        if self._order is None:
            return super()._step(tensordict)
        actions = tensordict.get((next(iter(self.group_map)), "action")).unbind(len(self.batch_size))
        by_index = [None] * len(actions)
        for a, i in zip(actions, self._order):
            by_index[i] = a
        obs, rews, dones, infos = self._env.step(by_index)
        return self._pack(obs, dones, infos, rews)

    @property
    def supports_seed_blocks(self) -> bool:
        """Whether :meth:`reset_blocks_from` applies: one group with equal specs (the fast path)."""
        return self._order is not None

    def reset_blocks_from(self, sources, rng) -> None:
        """Hold K seeds' envs as blocks of E: block ``k`` resets as ``sources[k]`` (seed ``k``'s own
        E-env wrapper) would, its draws inside ``rng(k)``
        (:class:`~marl_torchrl.envs.vmas_blocks.VmasSeedBlocks`, which has an example)."""
        from marl_torchrl.envs.vmas_blocks import VmasSeedBlocks

        if not (self.supports_seed_blocks and all(s.supports_seed_blocks for s in sources)):
            raise ValueError("seed blocks need one agent group with equal specs and tensor observations")
        self._blocks = VmasSeedBlocks(self, sources, rng)

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        which = None
        if tensordict is not None and "_reset" in tensordict.keys():
            which = tensordict.get("_reset").reshape(-1).to(torch.bool)
        if self._blocks is not None:
            return self._blocks.reset(which) if which is None or bool(which.any()) else self._read()
        if which is not None and not bool(which.all()):
            if bool(which.any()):
                return self._partial_reset(which, **kwargs)
        else:
            self._env.reset(return_observations=False)
        if self._order is None:  # torchrl's code, with no env left to reset: it only reads the world
            return super()._reset(self._no_reset(), **kwargs)
        return self._read()

    def _read(self, _vmas_env=None) -> TensorDictBase:
        """The reset output of the world as it is: observations, infos and dones of every env.

        (The reset pool calls it with the VMAS env, which is this wrapper's own.)
        """
        obs, dones, infos = self._env.get_from_scenario(
            get_observations=True, get_infos=True, get_rewards=False, get_dones=True)
        return self._pack(obs, dones, infos)

    def _partial_reset(self, which: torch.Tensor, **kwargs) -> TensorDictBase:
        if self._pool is None:
            self._pool = ResetPool(capture=self._read if self._order is not None else None)
        envs, rows = self._pool.take(self._env, which.to(self._env.device))
        if self._order is None:
            return super()._reset(self._no_reset(), **kwargs)
        # each reset env reads its pool row's outputs, computed when the pool was filled; the other envs
        # read row 0, which torchrl discards (it keeps their current data)
        pick = torch.zeros(which.shape[0], dtype=torch.long, device=rows.device).index_put((envs,), rows)
        return self._pool.fresh[pick]

    def _no_reset(self) -> TensorDictBase:
        zeros = torch.zeros((*self.batch_size, 1), dtype=torch.bool, device=self.device)
        return TensorDict({"_reset": zeros}, batch_size=self.batch_size)
