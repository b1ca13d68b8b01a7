"""Matrix games with uniform exploration data (epsilon = 1): exact answers in seconds on CPU.

Two-step game (QMIX paper): QMIX's greedy team earns 8, VDN's additive fit sends it to 2A for 7.
QTRAN's non-monotonic game [[8,-12,-12],[-12,0,0],[-12,0,0]]: neither QMIX nor VDN reaches 8.
"""
import pytest

from marl_torchrl.train import run

UNIFORM = [
    "algorithm.eps_start=1.0", "algorithm.eps_end=1.0", "algorithm.td_lambda=0", "algorithm.gamma=0.99",
    "algorithm.target_hard_interval=100", "algorithm.lr=0.0005", "model.type=mlp", "model.hidden_dim=64",
    "env.num_envs=128", "collector.frames_per_batch=256", "train.updates_per_batch=40", "replay.batch_size=32",
    "eval.episodes=8", "eval.interval_frames=1000000", "logger=[csv]", "checkpoint.interval_frames=1000000",
]


def _train(make_cfg, tmp_path, algorithm, env, seed, frames, extra=()):
    cfg = make_cfg([f"algorithm={algorithm}", f"env={env}", f"seed={seed}", f"total_frames={frames}"] + UNIFORM + list(extra))
    return run(cfg, tmp_path / f"{algorithm}_{seed}")["eval/ep_reward"]


@pytest.mark.parametrize("seed", [0, 1])
def test_two_step_qmix_earns_8(make_cfg, tmp_path, seed):
    # the published two-step test's mixer: embed 8
    ret = _train(make_cfg, tmp_path, "qmix", "matrix/two_step", seed, 12800, ["algorithm.mixer_options.mixing_embed_dim=8"])
    assert ret == pytest.approx(8.0, abs=0.1)


@pytest.mark.parametrize("seed", [0, 1])
def test_two_step_vdn_earns_7(make_cfg, tmp_path, seed):
    assert _train(make_cfg, tmp_path, "vdn", "matrix/two_step", seed, 12800) == pytest.approx(7.0, abs=0.1)


@pytest.mark.parametrize("algorithm", ["qmix", "vdn"])
def test_nonmonotonic_game_defeats_monotonic_mixers(make_cfg, tmp_path, algorithm):
    # shipped mixer defaults. Note: a monotonic mixer CAN fit this game with its greedy action at (0, 0)
    # (seen with mixing_embed_dim=8: Q_tot(0,0)=8.2, all else -6.2, a lower squared error than the fit
    # whose greedy action pays 0), so this checks the usual outcome, not an impossibility.
    for seed in (0, 1):
        ret = _train(make_cfg, tmp_path, algorithm, "matrix/nonmonotonic", seed, 6400)
        assert ret < 8.0 - 1e-3, f"{algorithm} reached {ret} on seed {seed}"
