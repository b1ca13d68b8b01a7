"""QTRAN's non-monotonic matrix game [[8,-12,-12],[-12,0,0],[-12,0,0]] from uniform data (epsilon = 1).

(a) Representation: a non-monotonic mixer fits all nine joint values; QMIX's monotonic one cannot.
(b) Decisions: Weighted QMIX (OW and CW) makes QMIX's decentralised greedy joint action the optimum,
    (0, 0) paying 8, on at least 4 of 5 seeds with the shipped defaults; its central Q* fits the game.
tests/test_matrix_games.py already checks that QMIX and VDN miss the 8.
"""
import pytest
import torch
from qtran_helpers import joint_q_table, load_run
from test_matrix_games import _train  # trains with test_matrix_games.UNIFORM (epsilon = 1 throughout)

GAME = "matrix/nonmonotonic"
FRAMES = 2560  # 400 updates: Q* and the non-monotonic mixer fit the game within about 0.15 by then


@pytest.fixture
def payoff(make_cfg):
    return torch.tensor(make_cfg([f"env={GAME}"]).env.payoff, dtype=torch.float32)


def _train_and_load(make_cfg, tmp_path, algorithm, seed=0):
    """Train one run; return its eval return and the rebuilt ``(loss, obs, state)``."""
    root = tmp_path / f"{algorithm}_{seed}"
    ret = _train(make_cfg, root, algorithm, GAME, seed, FRAMES)
    (run_dir,) = root.iterdir()
    return ret, load_run(run_dir)


def test_nonmonotonic_mixer_represents_the_game_and_qmix_does_not(make_cfg, tmp_path, payoff):
    _, (loss, obs, state) = _train_and_load(make_cfg, tmp_path, "qmix_nonmono")
    err = (joint_q_table(loss, obs, state) - payoff).abs()
    assert err.max() < 0.1, f"qmix_nonmono's fit is off by {err.max():.3f}:\n{joint_q_table(loss, obs, state)}"
    _, (loss, obs, state) = _train_and_load(make_cfg, tmp_path, "qmix")
    err = (joint_q_table(loss, obs, state) - payoff).abs()
    assert err.max() > 5.0, f"QMIX fitted the game within {err.max():.3f}:\n{joint_q_table(loss, obs, state)}"


@pytest.mark.parametrize("algorithm", ["ow_qmix", "cw_qmix"])
def test_weighted_qmix_reaches_the_optimum(make_cfg, tmp_path, payoff, algorithm):
    ret, (loss, obs, state) = _train_and_load(make_cfg, tmp_path, algorithm, seed=0)
    q_star = joint_q_table(loss, obs, state, central=True)
    assert (q_star - payoff).abs().max() < 0.5, f"{algorithm}'s Q* does not fit the game:\n{q_star}"
    q_tot = joint_q_table(loss, obs, state)
    assert q_tot.argmax().item() == 0, f"{algorithm}'s Q_tot is greedy elsewhere than (0, 0):\n{q_tot}"
    # benchmarks/qtran_counts.py: both reach 8 on 10 seeds of 10 (6400 frames); here 3 fixed seeds, at 2560
    returns = [ret] + [_train(make_cfg, tmp_path, algorithm, GAME, seed, FRAMES) for seed in range(1, 3)]
    reached = sum(r == pytest.approx(8.0, abs=0.1) for r in returns)
    assert reached == 3, f"{algorithm} reached 8 on {reached}/3 seeds: {returns}"
