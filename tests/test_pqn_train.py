"""PQN through the loop's rollout path: the two-step matrix game learned, a tiny run on every installed env
family, and bad PQN configs refused in one line."""
import math

import pytest

from families import family_params
from marl_torchrl.config import compose_config
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import main, run


# PQN's own overrides for a 8k-frame budget: a slower epsilon anneal (half the run) and a larger lr than SMAX's
TWO_STEP = [
    "env=matrix/two_step", "env.num_envs=64", "collector.frames_per_batch=256", "total_frames=8192",
    "algorithm.minibatches=4", "algorithm.eps_anneal_fraction=0.5", "algorithm.lr=0.001", "model.type=mlp",
    "model.hidden_dim=32", "eval.episodes=8", "eval.interval_frames=100000", "checkpoint.interval_frames=1000000",
]


@pytest.mark.parametrize("seed", [0, 1])
def test_two_step_pqn_qmix_earns_8(tmp_path, seed):
    metrics = run(compose_config("algorithm=pqn_qmix", f"seed={seed}", *TWO_STEP), tmp_path)
    assert metrics["eval/ep_reward"] == pytest.approx(8.0, abs=0.1)
    assert metrics["train/num_updates"] == 32 * 4 * 4  # iterations x epochs x minibatches
    assert metrics["rollout/epsilon"] == pytest.approx(0.01)


TINY = ["env.num_envs=4", "collector.frames_per_batch=32", "total_frames=64", "algorithm.minibatches=2",
        "algorithm.epochs=1", "model.hidden_dim=16", "eval.interval_frames=0", "checkpoint.interval_frames=1000000"]


@pytest.mark.parametrize("env", family_params(["matrix/two_step", "vmas/balance", "gridworld/gridworld25",
                                               "lbf/Foraging-8x8-2p-2f-coop-v3", "pettingzoo/simple_spread",
                                               "smax/3m"]))
def test_pqn_vdn_tiny_run_on_every_family(tmp_path, env):
    metrics = run(compose_config("algorithm=pqn_vdn", f"env={env}", *TINY), tmp_path)
    assert metrics["frames"] == 64 and metrics["train/num_updates"] == 4
    assert math.isfinite(metrics["train/loss"])
    assert (tmp_path / "models" / "final_model.pt").is_file()


@pytest.mark.parametrize("algorithm", ["pqn_iql", "pqn_qmix"])
def test_other_pqn_presets_run(tmp_path, algorithm):
    metrics = run(compose_config(f"algorithm={algorithm}", "env=vmas/balance", *TINY), tmp_path)
    assert metrics["train/num_updates"] == 4 and math.isfinite(metrics["train/loss"])


@pytest.mark.parametrize("override,words", [
    ("algorithm.td_lambda=1.5", "algorithm.td_lambda must be in [0, 1]"),
    ("algorithm.target_tau=0.01", "PQN has no target network"),
    ("algorithm.target_hard_interval=100", "PQN has no target network"),
])
def test_bad_pqn_config_is_one_error_line(capsys, override, words):
    with pytest.raises(SystemExit) as exit_info:
        main(["algorithm=pqn_vdn", override])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and words in err, err


def test_minibatches_that_do_not_divide_num_envs_are_refused_before_training(tmp_path):
    overrides = ["algorithm=pqn_vdn", "env=matrix/two_step", "env.num_envs=6", "collector.frames_per_batch=12",
                 "total_frames=24", "algorithm.minibatches=4", "eval.interval_frames=0"]
    with pytest.raises(ConfigError) as err:  # the typed config refuses it, before anything is built
        compose_config(*overrides)
    assert "algorithm.minibatches (4) must divide env.num_envs (6)" in str(err.value)
    assert "\n" not in str(err.value)
    from marl_torchrl.data import RolloutPath  # and the rollout path, for Python users who bypass the config

    with pytest.raises(ConfigError, match="must divide"):
        from tensordict import TensorDict

        RolloutPath(epochs=1, minibatches=4).add(TensorDict({}, [6, 2]))


def test_the_pqn_presets_normalise_the_network_and_the_command_line_can_turn_it_off():
    """LayerNorm is a model setting the pqn_* presets select (configs/model/normalised.yaml), not a second key."""
    for algorithm in ("pqn_vdn", "pqn_qmix", "pqn_iql"):
        model = compose_config(f"algorithm={algorithm}").model
        assert (model.layer_norm, model.input_norm) == (True, "layer"), algorithm
    model = compose_config("algorithm=pqn_vdn", "model.layer_norm=false").model
    assert (model.layer_norm, model.input_norm) == (False, "layer")
    model = compose_config("algorithm=pqn_vdn", "model.input_norm=running").model
    assert (model.layer_norm, model.input_norm) == (True, "running")
    model = compose_config("algorithm=qmix").model
    assert (model.layer_norm, model.input_norm) == (False, None)
    with pytest.raises(ConfigError, match="algorithm.norm"):
        compose_config("algorithm=pqn_vdn", "algorithm.norm=false")


def test_a_checkpoint_config_with_the_old_norm_key_loads_with_the_normalised_model():
    import dataclasses

    from marl_torchrl.config import run_config_from_dict

    old = dataclasses.asdict(compose_config("algorithm=pqn_vdn", "model.layer_norm=false", "model.input_norm=null"))
    old["algorithm"]["norm"] = True
    cfg = run_config_from_dict(old, {"algorithm": "pqn", "env": "vmas"})
    assert (cfg.model.layer_norm, cfg.model.input_norm) == (True, "layer")


@pytest.mark.parametrize("old, new", [(True, "layer"), (False, None)])
def test_a_checkpoint_config_with_the_old_boolean_input_norm_loads_as_its_kind(old, new):
    import dataclasses

    from marl_torchrl.config import run_config_from_dict

    values = dataclasses.asdict(compose_config("algorithm=pqn_vdn"))
    values["model"]["input_norm"] = old
    assert run_config_from_dict(values, {"algorithm": "pqn", "env": "vmas"}).model.input_norm == new
