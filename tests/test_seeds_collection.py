"""Batched collection of ``num_seeds=K`` (one env of K x num_envs, one policy forward) against per-seed
collection (each seed its own env, which ``tests/test_stacked_loop.py`` shows is seed ``s`` alone).

- on VMAS balance, each seed's batches are those of per-seed collection: same keys and shapes, the same
  observations, resets, actions (exploration on), rewards and VMAS ``info``; only the collector's
  trajectory ids differ;
- a seed's block is the same whatever the other seeds are (seed 6 as block 0 or block 1 of a K-run);
- a K-run trained with batched collection logs exactly the rollouts, epsilon, update counts and greedy
  evaluations of per-seed collection;
- ``collector.batch_seeds=false`` keeps per-seed collection, and says so (the other families:
  ``tests/test_seeds_collection_blocks.py``).
"""
from __future__ import annotations

import csv

import pytest
import torch

from marl_torchrl.config import compose_config
from marl_torchrl.seeds.collection import make_collection
from marl_torchrl.seeds.loop import setup_seeds
from marl_torchrl.train import run

BALANCE = ["env=vmas/balance", "env.num_envs=4", "env.max_steps=6", "threads=1", "model.hidden_dim=8",
           "collector.frames_per_batch=24", "eval.interval_frames=0", "logger=[]", "algorithm.eps_start=0.5"]
UNCOMPARED = {("collector", "traj_ids")}  # numbered over all K x E envs


def _collect(tmp_path, *extra: str, iterations: int = 3) -> list[list]:
    """Each iteration's per-seed batches, the exploration schedule stepped as the loop steps it."""
    sr = setup_seeds(compose_config(*BALANCE, "num_seeds=2", "total_frames=96", *extra), tmp_path)
    collection = make_collection(sr)
    out = []
    try:
        for _ in range(iterations):
            batches, seconds = collection.next()
            assert len(seconds) == len(batches) == 2
            out.append([b.clone() for b in batches])
            for r, b in zip(sr.runs, batches):
                r.parts.exploration_step(b.numel())
    finally:
        collection.shutdown()
    return out


def _assert_same(mine, theirs) -> None:
    assert mine.shape == theirs.shape
    keys = set(mine.keys(True, True))
    assert keys == set(theirs.keys(True, True))
    for key in keys - UNCOMPARED:
        a, b = mine.get(key), theirs.get(key)
        assert (torch.allclose(a, b, atol=1e-5) if a.dtype.is_floating_point else a.equal(b)), key


def test_batched_collection_gives_each_seed_its_per_seed_batches(tmp_path):
    batched, per_seed = _collect(tmp_path / "b"), _collect(tmp_path / "p", "collector.batch_seeds=false")
    for it_b, it_p in zip(batched, per_seed):
        for mine, theirs in zip(it_b, it_p):
            assert mine.shape == (4, 6)
            _assert_same(mine, theirs)
    resets = [b["next", "done"].sum() for it in batched for b in it]
    assert sum(resets) > 0  # episodes ended inside the batches: partial resets were compared
    first = [it[0]["agents", "observation"] for it in batched], [it[1]["agents", "observation"] for it in batched]
    assert not torch.equal(first[0][0], first[1][0])  # the seeds' envs differ


def test_a_seed_block_is_the_same_whatever_the_other_seeds_do(tmp_path):
    """Seed 6 as the second block (next to seed 5) and as the first (next to seed 7)."""
    second = _collect(tmp_path / "a", "seed=5", iterations=2)
    first = _collect(tmp_path / "b", "seed=6", iterations=2)
    for it_a, it_b in zip(second, first):
        _assert_same(it_a[1], it_b[0])


def _rows(path) -> list[dict[str, str]]:
    with open(path / "training_log.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_a_k_run_logs_the_same_with_batched_and_per_seed_collection(tmp_path, capfd):
    common = [*BALANCE, "num_seeds=2", "total_frames=48", "replay.batch_size=4", "replay.warmup=4",
              "train.updates_per_batch=2", "eval.interval_frames=48", "eval.episodes=2", "logger=[csv]"]
    run(compose_config(*common), tmp_path / "b")
    assert "num_seeds=2: batched collection (one env of 2 x 4 envs" in capfd.readouterr().err
    run(compose_config(*common, "collector.batch_seeds=false"), tmp_path / "p")
    exact = ["frames", "rollout/ep_reward", "rollout/ep_length", "rollout/num_episodes", "rollout/epsilon",
             "train/num_updates", "eval/ep_reward"]
    for s in (0, 1):
        mine, theirs = _rows(tmp_path / "b" / f"seed_{s}"), _rows(tmp_path / "p" / f"seed_{s}")
        assert len(mine) == len(theirs) == 2
        for a, b in zip(mine, theirs):
            assert [a[c] for c in exact] == [b[c] for c in exact]
            assert float(a["train/loss"]) == pytest.approx(float(b["train/loss"]), rel=1e-4, abs=1e-6)
        assert sorted(p.name for p in (tmp_path / "b" / f"seed_{s}").rglob("*")) == \
            sorted(p.name for p in (tmp_path / "p" / f"seed_{s}").rglob("*"))


def test_batch_seeds_false_collects_per_seed(tmp_path):
    """(Families that cannot batch seeds: ``tests/test_seeds_collection_blocks.py``.)"""
    off = compose_config(*BALANCE, "num_seeds=2", "total_frames=48", "collector.batch_seeds=false")
    collection = make_collection(setup_seeds(off, tmp_path / "v"))
    assert collection.describe().endswith("(each seed steps its own env: collector.batch_seeds=false)")
    collection.shutdown()
