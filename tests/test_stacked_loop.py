"""``num_seeds=K`` end to end (issue 19): K seeds in one process train as K single runs would.

- seed ``s`` inside a K-run starts from exactly the parameters, random stream and env resets of seed ``s``
  alone (VMAS balance, whose resets draw from torch's generator);
- on the two-step matrix game (GRU QMIX, a few hundred frames), seed ``s`` in a K-run logs the same
  rollouts and evaluations as seed ``s`` alone, ends with the same greedy actions and returns, and its
  parameters agree to float rounding;
- each seed's dir is a single run's (files, CSV columns) and ``marl-report`` reads the K-run as K runs;
- a seed's checkpoint evaluates and resumes as a single run's; the whole K-run resumes;
- unsupported settings are one ``ConfigError`` line before anything is built.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch

from marl_torchrl.checkpoint import load_checkpoint, rng_state
from marl_torchrl.config import compose_config
from marl_torchrl.config.run import seed_dir
from marl_torchrl.evaluate import evaluate_policy, load_policy
from marl_torchrl.loop import setup
from marl_torchrl.registry import ConfigError
from marl_torchrl.report.cli import main as report_main
from marl_torchrl.seeds.loop import seed_config, setup_seeds
from marl_torchrl.train import run

# two-step game, GRU QMIX: 8 envs x 4 steps per iteration, 4 iterations, 2 updates each, target copies
# every 3 updates, an evaluation and a checkpoint every 2 iterations
MATRIX = ["algorithm=qmix", "env=matrix/two_step", "threads=1", "model.hidden_dim=8", "env.num_envs=8",
          "collector.frames_per_batch=32", "total_frames=128", "replay.batch_size=8", "replay.warmup=8",
          "train.updates_per_batch=2", "algorithm.target_hard_interval=3", "eval.episodes=4",
          "eval.interval_frames=64", "checkpoint.interval_frames=64", "algorithm.mixer_options.mixing_embed_dim=8"]
SEEDS = (3, 4)
EXACT = ["frames", "rollout/ep_reward", "rollout/num_episodes", "rollout/epsilon", "eval/ep_reward",
         "train/num_updates"]


def _cfg(*extra: str):
    return compose_config(*MATRIX, *extra)


def _log(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path / "training_log.csv", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


def _params(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["parts"]["loss"]


def _greedy(checkpoint: Path) -> tuple[torch.Tensor, dict[str, float]]:
    """The greedy actions of a final model over one episode of every env, and its evaluation."""
    env, policy, _, info = load_policy(str(checkpoint), episodes=4)
    from torchrl.envs.utils import ExplorationType, set_exploration_type

    with set_exploration_type(ExplorationType.DETERMINISTIC), torch.no_grad():
        actions = env.rollout(info.max_steps, policy)[("agents", "action")]
    return actions, evaluate_policy(env, policy, max_steps=info.max_steps)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A K = 2 run of seeds 3 and 4, and each seed alone."""
    root = tmp_path_factory.mktemp("stacked")
    run(_cfg(f"seed={SEEDS[0]}", f"num_seeds={len(SEEDS)}"), root / "k")
    for s in SEEDS:
        run(_cfg(f"seed={s}"), root / f"alone_{s}")
    return root


def test_seed_starts_as_alone(tmp_path):
    """Parameters, random stream and env resets of each seed of a K-run are those of its single run."""
    cfg = compose_config("env=vmas/balance", "env.num_envs=2", "env.max_steps=5", "threads=1", "num_seeds=2",
                         "seed=7", "model.hidden_dim=8", "eval.interval_frames=0", "collector.frames_per_batch=10",
                         "logger=[]")
    stacked = setup_seeds(cfg, tmp_path / "k")
    resets = []
    for k, seed in enumerate(stacked.seeds):
        alone = setup(seed_config(cfg, seed), tmp_path / f"alone_{seed}")
        assert rng_state()["torch"].equal(stacked.streams.states[k]["torch"]["torch"])
        mine, theirs = stacked.runs[k].parts.loss.state_dict(), alone.parts.loss.state_dict()
        assert list(mine) == list(theirs) and all(mine[n].equal(theirs[n]) for n in mine)
        obs_alone = alone.env.reset()[("agents", "observation")]
        with stacked.streams.use(k):
            obs = stacked.runs[k].env.reset()[("agents", "observation")]
        assert obs.equal(obs_alone)
        resets.append(obs)
    assert not resets[0].equal(resets[1])  # each seed's envs are seeded from its own seed


def test_matrix_game_seed_in_k_run_equals_seed_alone(runs):
    for s in SEEDS:
        k_dir, alone_dir = runs / "k" / f"seed_{s}", runs / f"alone_{s}"
        (k_cols, k_rows), (a_cols, a_rows) = _log(k_dir), _log(alone_dir)
        assert len(k_rows) == len(a_rows) == 4
        for k_row, a_row in zip(k_rows, a_rows):
            assert [k_row[c] for c in EXACT] == [a_row[c] for c in EXACT]
            assert float(k_row["train/loss"]) == pytest.approx(float(a_row["train/loss"]), rel=1e-4, abs=1e-6)
        mine, theirs = _params(k_dir / "models" / "final_model.pt"), _params(alone_dir / "models" / "final_model.pt")
        assert all(torch.allclose(mine[n], theirs[n], atol=1e-5) for n in mine)
        (k_actions, k_eval), (a_actions, a_eval) = (_greedy(d / "models" / "final_model.pt") for d in (k_dir, alone_dir))
        assert k_actions.equal(a_actions) and k_eval == a_eval
        assert k_eval["eval/ep_reward"] == float(k_rows[-1]["eval/ep_reward"])  # the seed's checkpoint evaluates
    assert not _params(runs / "k" / "seed_3" / "models" / "final_model.pt")["agent_net.head.weight"].equal(
        _params(runs / "k" / "seed_4" / "models" / "final_model.pt")["agent_net.head.weight"])


def test_each_seed_dir_is_a_single_run_and_report_reads_k_runs(runs, tmp_path, capsys):
    assert sorted(p.name for p in (runs / "k").iterdir()) == [f"seed_{s}" for s in SEEDS]
    alone_files = sorted(p.relative_to(runs / "alone_3").as_posix() for p in (runs / "alone_3").rglob("*"))
    for s in SEEDS:
        d = runs / "k" / f"seed_{s}"
        assert sorted(p.relative_to(d).as_posix() for p in d.rglob("*")) == alone_files
        assert _log(d)[0] == _log(runs / "alone_3")[0]
        assert load_checkpoint(d / "models" / "final_model.pt")["config"]["seed"] == s
    assert report_main([str(runs / "k"), "--out", str(tmp_path / "rep"), "--reps", "50"]) == 0
    assert "report: 2 runs, 0 skipped" in capsys.readouterr().out
    with open(tmp_path / "rep" / "final.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["algorithm"], row["task"], row["n_runs"]) == ("qmix", "matrix/two_step", "2")


def test_k_run_resumes_and_a_seed_resumes_alone(runs, tmp_path):
    """Resuming the K-run continues each seed as resuming that seed alone does; one seed of the K-run
    resumes alone from its own dir (a single run's checkpoint) to the same parameters."""
    k_dir, alone_dir = tmp_path / "k", tmp_path / "alone_4"
    shutil.copytree(runs / "k", k_dir)
    shutil.copytree(runs / "alone_4", alone_dir)
    one_dir = tmp_path / "one"
    shutil.copytree(runs / "k" / "seed_4", one_dir)
    metrics = run(_cfg(f"seed={SEEDS[0]}", f"num_seeds={len(SEEDS)}", f"resume={k_dir}", "total_frames=192"), k_dir)
    assert {s: m["frames"] for s, m in metrics.items()} == {3: 192, 4: 192}
    run(_cfg("seed=4", f"resume={alone_dir}", "total_frames=192"), alone_dir)
    run(_cfg("seed=4", f"resume={one_dir}", "total_frames=192"), one_dir)
    theirs = _params(alone_dir / "models" / "final_model.pt")
    for d in (k_dir / "seed_4", one_dir):
        assert len(_log(d)[1]) == 6
        mine = _params(d / "models" / "final_model.pt")
        assert all(torch.allclose(mine[n], theirs[n], atol=1e-5) for n in mine)


@pytest.mark.parametrize("overrides, words", [
    (["algorithm=facmac"], ["num_seeds=2", "facmac"]),
    (["algorithm=ow_qmix"], ["num_seeds=2", "ow_qmix"]),
    (["algorithm=pqn_vdn", "algorithm.mixer=qplex"], ["num_seeds=2", "pqn_vdn (mixer qplex)"]),
    (["algorithm=qplex"], ["num_seeds=2", "mixer qplex"]),
    (["logger=[csv,wandb]"], ["num_seeds=2", "wandb"]),
    (["resume=/nope/checkpoint_64.pt"], ["num_seeds=2", "run dir", "/nope/checkpoint_64.pt"]),
])
def test_unsupported_settings_are_one_config_error(overrides, words):
    with pytest.raises(ConfigError) as err:
        compose_config("num_seeds=2", *overrides)
    assert "\n" not in str(err.value) and all(w in str(err.value) for w in words)


def test_num_seeds_must_be_positive():
    with pytest.raises(ConfigError, match="num_seeds must be > 0, got 0"):
        compose_config("num_seeds=0")


def test_a_wall_clock_budget_ends_every_seed_together(tmp_path):
    """``train.max_seconds`` that the first iteration already spends: each seed ends after it, with its final model."""
    metrics = run(_cfg("num_seeds=2", "total_frames=6400", "train.max_seconds=1e-9"), tmp_path)
    assert sorted(metrics) == [0, 1] and all(m["frames"] == metrics[0]["frames"] < 6400 for m in metrics.values())
    assert all((seed_dir(tmp_path, s) / "models" / "final_model.pt").is_file() for s in (0, 1))


def test_a_stop_signal_checkpoints_every_seed(tmp_path, monkeypatch):
    """SIGTERM during the second iteration: every seed finishes it and writes its checkpoint; the K-run's dir
    is what ``resume=`` takes (the resume itself: test_k_run_resumes_and_a_seed_resumes_alone)."""
    import os
    import signal

    from marl_torchrl.faults import RunInterrupted
    from marl_torchrl.seeds import loop

    def record(run_, batch):
        if run_.state.frames == 32 and run_.cfg.seed == SEEDS[1]:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(run_, batch)

    real = loop.record_batch
    monkeypatch.setattr(loop, "record_batch", record)
    with pytest.raises(RunInterrupted) as err:
        run(_cfg(f"seed={SEEDS[0]}", f"num_seeds={len(SEEDS)}", "checkpoint.interval_frames=1000"), tmp_path / "k")
    assert err.value.exit_code == 143 and err.value.checkpoint == tmp_path / "k"
    for s in SEEDS:
        assert sorted(p.name for p in (tmp_path / "k" / f"seed_{s}" / "models").iterdir()) == ["checkpoint_64.pt"]
        assert len(_log(tmp_path / "k" / f"seed_{s}")[1]) == 2


def test_a_non_finite_seed_stops_the_k_run_naming_it(tmp_path, monkeypatch):
    from marl_torchrl.faults import NonFiniteError
    from marl_torchrl.seeds.stacked import StackedLearners

    def step(self, batches):
        logs = real(self, batches)
        logs[1] = {**logs[1], "loss": torch.tensor(float("nan")), "skipped": torch.ones(()), "nonfinite": "loss"}
        return logs

    real = StackedLearners.step
    monkeypatch.setattr(StackedLearners, "step", step)
    with pytest.raises(NonFiniteError, match=f"non-finite train/loss of seed {SEEDS[1]} \\(nan\\) at iteration 1"):
        run(_cfg(f"seed={SEEDS[0]}", f"num_seeds={len(SEEDS)}"), tmp_path / "k")
