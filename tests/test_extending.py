"""docs/extending.md: its three templates (a mixer, an algorithm, an env family) run as written, and
what they add trains through the real loop."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from marl_torchrl.algorithms import build_algorithm
from marl_torchrl.envs import describe, make_env
from marl_torchrl.train import run

DOC = Path(__file__).resolve().parent.parent / "docs" / "extending.md"


@pytest.fixture(scope="module")
def doc():
    """Every ``python`` block of the page, in order, in one namespace (registrations happen once)."""
    namespace: dict = {}
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 5
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - the documentation's own code
    yield namespace
    # forget what the page registered: later tests (and doctests) list the shipped names only
    from marl_torchrl.config import ALGORITHM_SCHEMAS, ENV_SCHEMAS
    from marl_torchrl.registry import ALGORITHMS, ENV_FAMILIES, MIXERS

    MIXERS.remove("gated_sum")
    ALGORITHMS.remove("online_iql")
    ALGORITHM_SCHEMAS.pop("online_iql", None)
    ENV_FAMILIES.remove("penalty")
    ENV_SCHEMAS.pop("penalty", None)


def test_the_mixer_template_plugs_into_q_learning(doc, tmp_path):
    cfg = doc["cfg"]
    parts = build_algorithm(cfg, describe(make_env(cfg.env, num_envs=2)), "cpu")
    assert type(parts.loss.mixer).__name__ == "GatedSumMixer" and parts.loss.mixer.gates[0].out_features == 16
    cfg.total_frames, cfg.collector.frames_per_batch, cfg.env.num_envs = 128, 64, 8
    cfg.replay.batch_size = cfg.replay.warmup = 4
    cfg.eval.interval_frames, cfg.model.hidden_dim = 0, 8
    metrics = run(cfg, tmp_path / "mixer")
    assert metrics["train/num_updates"] > 0 and (tmp_path / "mixer" / "models" / "final_model.pt").exists()


def test_the_on_policy_algorithm_template_trains_without_replay(doc, tmp_path):
    metrics = run(doc["online_run"], tmp_path / "online")
    iterations, cfg = 64 // 32, doc["online_run"].algorithm
    assert metrics["train/num_updates"] == iterations * cfg.epochs * cfg.minibatches
    assert metrics["train/loss"] >= 0


def test_the_env_family_template_builds_and_trains(doc, tmp_path):
    env = doc["penalty_env"]
    assert describe(env).n_agents == 2
    from marl_torchrl.config import compose_config

    cfg = compose_config("algorithm=vdn", "env=matrix/one_step", "model.type=mlp", "model.hidden_dim=8",
                         "total_frames=64", "collector.frames_per_batch=32", "eval.interval_frames=32",
                         "eval.episodes=2", "replay.batch_size=4", "replay.warmup=4")
    cfg.env = doc["PenaltyGameConfig"](num_envs=8, k=-50.0)
    metrics = run(cfg, tmp_path / "penalty")
    assert "eval/ep_reward" in metrics
