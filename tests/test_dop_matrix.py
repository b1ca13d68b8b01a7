"""DOP-SAC on the QMIX two-step game: the greedy (mode) team earns at least 7 on every seed.

DOP explores with its own stochastic policy (no epsilon), so its data follow the policy rather than
being uniform; with the shipped defaults the mode of the learned policy reached 8 on seeds 0-2 (its
linearly decomposed critic only has to be right where the policy goes). From uniform data a linear
decomposition, like VDN, would prefer 2A (7).
"""
import pytest
from test_matrix_games import UNIFORM

from marl_torchrl.train import run

# the matrix tests' env, model, collector and replay settings; DOP's own algorithm defaults
DOP_SETTINGS = [o for o in UNIFORM if not o.startswith("algorithm.")] + ["algorithm=dop"]


@pytest.mark.parametrize("seed", [0, 1])
def test_two_step_dop_earns_at_least_7(make_cfg, tmp_path, seed):
    cfg = make_cfg(DOP_SETTINGS + ["env=matrix/two_step", f"seed={seed}", "total_frames=6400"])
    assert run(cfg, tmp_path)["eval/ep_reward"] >= 7.0 - 1e-3
