"""FACMAC on the matrix games, from uniform exploration data (epsilon = 1), in seconds on CPU.

Two-step game: the greedy actors earn 8. QTRAN's game [[8,-12,-12],[-12,0,0],[-12,0,0]]: the critic
with its non-monotonic mixer fits all nine joint values (the representation); whether the actors find
the 8 is a separate question (relative overgeneralisation, see benchmarks/README.md for the counts).
"""
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from marl_torchrl import keys
from marl_torchrl.algorithms import build_algorithm
from marl_torchrl.checkpoint import load_checkpoint, load_parts_state
from marl_torchrl.envs import describe, make_env
from marl_torchrl.train import run

from test_matrix_games import UNIFORM

# uniform exploration data as in test_matrix_games.UNIFORM, with FACMAC's own algorithm keys (it has
# actor_lr / critic_lr and soft targets instead of lr and hard target copies)
FACMAC_UNIFORM = [o for o in UNIFORM if not o.startswith("algorithm.")] + [
    "algorithm=facmac", "algorithm.eps_start=1.0", "algorithm.eps_end=1.0", "algorithm.td_lambda=0",
]
QTRAN = torch.tensor([[8.0, -12, -12], [-12, 0, 0], [-12, 0, 0]])


def _train(make_cfg, run_dir, env, seed, frames):
    cfg = make_cfg(FACMAC_UNIFORM + [f"env={env}", f"seed={seed}", f"total_frames={frames}"])
    return run(cfg, run_dir)["eval/ep_reward"]


@pytest.mark.parametrize("seed", [0, 1])
def test_two_step_facmac_earns_8(make_cfg, tmp_path, seed):
    assert _train(make_cfg, tmp_path, "matrix/two_step", seed, 12800) == pytest.approx(8.0, abs=0.1)


def critic_joint_table(run_dir) -> torch.Tensor:
    """Q_tot(s, a1, a2) of the trained critic + mixer for every joint action of a 2-agent one-step game."""
    ckpt = load_checkpoint(run_dir / "models" / "final_model.pt")
    cfg = OmegaConf.create(ckpt["config"])
    env = make_env(cfg.env, num_envs=1, seed=0)
    parts = build_algorithm(cfg, describe(env), "cpu")
    load_parts_state(parts, ckpt["parts"], weights_only=True)
    td = env.reset()
    n = parts.loss.n_actions
    joint = torch.cartesian_prod(torch.arange(n), torch.arange(n))  # [n*n, 2]
    obs = td[keys.OBS].expand(len(joint), -1, -1)
    state = td[keys.STATE].expand(len(joint), -1)
    with torch.no_grad():
        q = parts.loss.critic(obs, F.one_hot(joint, n).float())
        return parts.loss.mixer(q, state).reshape(n, n)


def test_qtran_critic_fits_every_joint_value(make_cfg, tmp_path):
    _train(make_cfg, tmp_path, "matrix/nonmonotonic", 0, 6400)
    table = critic_joint_table(tmp_path)
    assert (table - QTRAN).abs().max() < 0.1, table
