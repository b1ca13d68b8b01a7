"""How the K seeds of a ``num_seeds=K`` run collect: :func:`make_collection` picks one of two paths.

- :class:`BatchedCollection`: one collector over one env of ``K x num_envs`` envs
  (:func:`~marl_torchrl.envs.seed_blocks.seed_block_env`, block ``k`` reset as seed ``k``'s own env would,
  on its random stream) with one policy forward for all K seeds
  (:class:`~marl_torchrl.seeds.acting.StackedActingPolicy`, exploration per seed on its stream). Each
  batch is split into the K seeds' ``[num_envs, T]`` batches. Taken when ``collector.batch_seeds`` is true
  (the default), the env can batch seeds (VMAS, GridWorld25, SMAX, matrix games, LBF, serial PettingZoo)
  and the policies are epsilon-greedy over shared agent networks.
- :class:`PerSeedCollection`: each seed its own collector over its own env, on its own stream (any family).

Either way seed ``k`` gets the batches of its single run: the same envs, resets and exploration draws
(the batched path computes Q-values with stacked kernels, equal to float rounding), and
:meth:`~PerSeedCollection.next` returns ``(batches, seconds)``: seed ``k``'s batch and its share of the
collection time (batched: the whole collection's time over K), or None when the frames are spent.

>>> from marl_torchrl.config import compose_config
>>> from marl_torchrl.seeds.loop import setup_seeds
>>> import tempfile
>>> cfg = compose_config("env=vmas/balance", "env.num_envs=2", "env.max_steps=5", "num_seeds=2", "total_frames=20",
...                      "collector.frames_per_batch=10", "model.hidden_dim=8", "eval.interval_frames=0", "logger=[]")
>>> collection = make_collection(setup_seeds(cfg, tempfile.mkdtemp()))
>>> collection.describe()
'num_seeds=2: batched collection (one env of 2 x 2 envs, one policy forward for all seeds)'
>>> batches, seconds = collection.next()
>>> [tuple(b.shape) for b in batches], len(seconds)
([(2, 5), (2, 5)], 2)
>>> collection.shutdown()
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from marl_torchrl.envs.seed_blocks import seed_block_env
from marl_torchrl.loop import make_collector
from marl_torchrl.seeds.acting import StackedActingPolicy

if TYPE_CHECKING:
    from marl_torchrl.seeds.loop import StackedRun

__all__ = ["BatchedCollection", "PerSeedCollection", "make_collection"]


class PerSeedCollection:
    """Each seed collects with its own collector over its own env, inside its own random stream."""

    def __init__(self, sr: StackedRun, why: str = ""):
        self.sr, self.why, self.collectors, self.iterators = sr, why, [], []
        for k, run in enumerate(sr.runs):
            with sr.streams.use(k):  # a collector resets its env: the seed's draws, as in its single run
                self.collectors.append(make_collector(run))
                self.iterators.append(iter(self.collectors[-1]))

    def describe(self) -> str:
        return f"num_seeds={len(self.sr.runs)}: per-seed collection (each seed steps its own env{self.why})"

    def next(self) -> tuple[list, list[float]] | None:
        batches, seconds = [], []
        for k, it in enumerate(self.iterators):
            with self.sr.streams.use(k):
                t0 = time.perf_counter()
                batch = next(it, None)
                if batch is None:  # every seed collects the same frames: all end together
                    return None
                seconds.append(time.perf_counter() - t0)
                batches.append(batch)
        return batches, seconds

    def update_weights(self) -> None:
        for k, c in enumerate(self.collectors):
            with self.sr.streams.use(k):
                c.update_policy_weights_()

    def shutdown(self) -> None:
        for c in self.collectors:
            c.shutdown()


class BatchedCollection:
    """One collector over ``env`` (``K x E`` envs) with ``policy`` (a :class:`StackedActingPolicy`)."""

    def __init__(self, sr: StackedRun, env, policy: StackedActingPolicy):
        self.sr, self.block, self.env = sr, policy.block, env
        self.collector = make_collector(sr.runs[0], env, policy, copies=len(sr.runs))
        self.iterator = iter(self.collector)

    def describe(self) -> str:
        k = len(self.sr.runs)
        return (f"num_seeds={k}: batched collection (one env of {k} x {self.block} envs, "
                "one policy forward for all seeds)")

    def next(self) -> tuple[list, list[float]] | None:
        t0 = time.perf_counter()
        batch = next(self.iterator, None)
        if batch is None:
            return None
        k, e = len(self.sr.runs), self.block
        share = (time.perf_counter() - t0) / k
        return [batch[i * e:(i + 1) * e] for i in range(k)], [share] * k

    def update_weights(self) -> None:
        """Nothing to do: the stacked policy reads the seeds' networks at every step."""

    def shutdown(self) -> None:
        self.collector.shutdown()


def make_collection(sr: StackedRun) -> BatchedCollection | PerSeedCollection:
    """The batched path where ``collector.batch_seeds``, the env family and the policies allow it, else
    the per-seed one (see the module docstring)."""
    cfg, runs = sr.cfg, sr.runs
    if not cfg.collector.batch_seeds:
        return PerSeedCollection(sr, ": collector.batch_seeds=false")
    policy = StackedActingPolicy.of([r.parts.policy for r in runs], int(runs[0].env.batch_size.numel()),
                                    sr.streams.use_torch)
    if policy is None:
        return PerSeedCollection(sr, ": the policies are not epsilon-greedy over shared agent networks")
    env = seed_block_env(cfg.env, [r.env for r in runs], sr.streams.use, device=runs[0].device,
                         last_action=cfg.model.last_action, transforms=runs[0].parts.env_transforms)
    if env is None:
        return PerSeedCollection(sr, f": env family {cfg.env.family} cannot batch seeds")
    return BatchedCollection(sr, env, policy)
