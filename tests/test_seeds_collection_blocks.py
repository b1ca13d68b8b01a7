"""Batched collection of ``num_seeds=K`` on the families besides VMAS (``tests/test_seeds_collection.py``):
GridWorld25, SMAX, the matrix games, LBF and PettingZoo (MPE), against per-seed collection (which is seed
``s`` alone).

- each seed's batches are those of per-seed collection (same keys and shapes, observations, resets,
  actions with exploration on, rewards, masks; only the collector's trajectory ids differ), over batches in
  which some envs of a block auto-reset while others run on;
- a seed's block is the same whatever the other seeds are (seed 6 as block 0 or block 1);
- a ``num_seeds=2`` GridWorld run through ``train.run`` takes the batched path and evaluates and logs each
  seed as per-seed collection does;
- envs that cannot batch seeds (e.g. PettingZoo with ``parallel=process``) keep per-seed collection, and say so.
"""
from __future__ import annotations

import pytest
import torch

from families import family_params, skip_if_family_missing
from marl_torchrl.config import compose_config
from marl_torchrl.seeds.collection import BatchedCollection, make_collection
from marl_torchrl.seeds.loop import setup_seeds
from marl_torchrl.train import run
from test_seeds_collection import _assert_same, _rows  # the VMAS test's batch comparison and log reader

COMMON = ["threads=1", "model.hidden_dim=8", "eval.interval_frames=0", "logger=[]", "algorithm.eps_start=0.5"]
# tiny sizes; episodes end at different steps in different envs (food collected, a side eliminated), so
# blocks reset some of their envs mid-batch
FAMILIES = {
    "gridworld": ["env=gridworld/gridworld25", "env.size=4", "env.n_agents=2", "env.n_food=1", "env.num_envs=4",
                  "env.max_steps=7", "collector.frames_per_batch=20"],
    "matrix": ["env=matrix/two_step", "env.num_envs=4", "collector.frames_per_batch=12"],
    "smax": ["env=smax/3m", "env.num_envs=2", "env.max_steps=30", "collector.frames_per_batch=20"],  # 2 and 2 x 2:
    # the batches smax.py's doctest and test_envs_smax already compiled
    "lbf": ["env=lbf/Foraging-8x8-2p-2f-coop-v3", "env.task=Foraging-5x5-2p-1f-v3", "env.num_envs=4",
            "env.max_steps=8", "collector.frames_per_batch=24"],  # one agent can eat the food: early ends
    "pettingzoo": ["env=pettingzoo/simple_spread", "env.kwargs.N=2", "env.kwargs.max_cycles=5", "env.num_envs=3",
                   "collector.frames_per_batch=18"],  # (MPE episodes all end at max_cycles, together)
}
TOGETHER = {"matrix", "pettingzoo"}  # families whose envs all end on the same step


def _collect(tmp_path, family: str, *extra: str, iterations: int = 3) -> list[list]:
    """Each iteration's per-seed batches, the exploration schedule stepped as the loop steps it."""
    cfg = compose_config(*FAMILIES[family], *COMMON, "num_seeds=2", "total_frames=1000", *extra)
    collection = make_collection(setup_seeds(cfg, tmp_path))
    batched = "collector.batch_seeds=false" not in extra
    assert isinstance(collection, BatchedCollection) == batched, collection.describe()
    out = []
    try:
        for _ in range(iterations):
            batches, _ = collection.next()
            out.append([b.clone() for b in batches])
            for r, b in zip(collection.sr.runs, batches):
                r.parts.exploration_step(b.numel())
    finally:
        collection.shutdown()
    return out


@pytest.mark.parametrize("family", family_params(FAMILIES))
def test_batched_collection_gives_each_seed_its_per_seed_batches(tmp_path, family):
    batched = _collect(tmp_path / "b", family)
    per_seed = _collect(tmp_path / "p", family, "collector.batch_seeds=false")
    partial, ends = 0, 0
    for it_b, it_p in zip(batched, per_seed):
        for mine, theirs in zip(it_b, it_p):
            _assert_same(mine, theirs)
            done = mine["next", "done"].squeeze(-1)  # [E, T]
            partial += int((done.any(0) & ~done.all(0)).sum())  # steps where some envs end, others run on
            ends += int(done.sum())
    assert ends > 0
    if family not in TOGETHER:
        assert partial > 0  # auto-resets of some envs of a block were compared
    firsts = [it[0]["agents", "observation"] for it in batched], [it[1]["agents", "observation"] for it in batched]
    if family != "matrix":  # the matrix games have one start
        assert not torch.equal(torch.stack(firsts[0]), torch.stack(firsts[1]))  # the seeds' envs differ


@pytest.mark.parametrize("family", family_params(["gridworld", "smax", "lbf", "pettingzoo"]))
def test_a_seed_block_is_the_same_whatever_the_other_seeds_do(tmp_path, family):
    """Seed 6 as the second block (next to seed 5) and as the first (next to seed 7)."""
    second = _collect(tmp_path / "a", family, "seed=5", iterations=2)
    first = _collect(tmp_path / "b", family, "seed=6", iterations=2)
    for it_a, it_b in zip(second, first):
        _assert_same(it_a[1], it_b[0])


def test_a_gridworld_k_run_batches_and_evaluates_and_logs_per_seed(tmp_path, capfd):
    common = [*FAMILIES["gridworld"], *COMMON, "algorithm=qmix", "num_seeds=2", "total_frames=80",
              "replay.batch_size=4", "replay.warmup=4", "train.updates_per_batch=2", "eval.interval_frames=40",
              "eval.episodes=2", "logger=[csv]", "algorithm.mixer_options.mixing_embed_dim=8"]
    run(compose_config(*common), tmp_path / "b")
    assert "num_seeds=2: batched collection (one env of 2 x 4 envs" in capfd.readouterr().err
    run(compose_config(*common, "collector.batch_seeds=false"), tmp_path / "p")
    assert "per-seed collection" in capfd.readouterr().err
    exact = ["frames", "rollout/ep_reward", "rollout/ep_length", "rollout/num_episodes", "rollout/epsilon",
             "rollout/items_collected", "train/num_updates", "eval/ep_reward", "eval/items_collected"]
    logs = []
    for s in (0, 1):
        mine, theirs = _rows(tmp_path / "b" / f"seed_{s}"), _rows(tmp_path / "p" / f"seed_{s}")
        assert len(mine) == len(theirs) == 4
        assert sum(1 for r in mine if r["eval/ep_reward"]) == 2  # evaluated at 40 and 80 frames
        for a, b in zip(mine, theirs):
            assert [a[c] for c in exact] == [b[c] for c in exact]
            assert bool(a["train/loss"]) == bool(b["train/loss"])  # (no update before the warm-up)
            if a["train/loss"]:
                assert float(a["train/loss"]) == pytest.approx(float(b["train/loss"]), rel=1e-4, abs=1e-6)
        assert any(r["train/loss"] for r in mine)
        logs.append([r["rollout/ep_reward"] for r in mine])
        assert (tmp_path / "b" / f"seed_{s}" / "models" / "final_model.pt").exists()
    assert logs[0] != logs[1]  # two seeds, two different runs


def test_envs_that_cannot_batch_seeds_collect_per_seed(tmp_path, monkeypatch):
    """An env whose base offers no seed blocks (here PettingZoo's, told it has none) keeps per-seed collection."""
    skip_if_family_missing("pettingzoo")
    from marl_torchrl.envs.pettingzoo import PettingZooBatch

    monkeypatch.setattr(PettingZooBatch, "supports_seed_blocks", False)
    cfg = compose_config(*FAMILIES["pettingzoo"], "env.num_envs=2", "collector.frames_per_batch=8", "num_seeds=2",
                         "total_frames=16", *COMMON)
    collection = make_collection(setup_seeds(cfg, tmp_path))
    try:
        assert collection.describe() == "num_seeds=2: per-seed collection (each seed steps its own env: env " \
                                        "family pettingzoo cannot batch seeds)"
        batches, _ = collection.next()
        assert [tuple(b.shape) for b in batches] == [(2, 4), (2, 4)]
    finally:
        collection.shutdown()
