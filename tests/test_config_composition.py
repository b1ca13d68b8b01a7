"""Every algorithm config composes with every env config, builds, and acts one step.

The config files are enumerated (a new ``configs/algorithm/*.yaml`` or ``configs/env/<family>/*.yaml``
is tested without touching this file). Combinations that are invalid by design (Q-learning on
continuous actions) must fail with a one-line :class:`ConfigError`, not a traceback deep inside.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from families import family_params
from hydra import compose, initialize_config_dir
from tensordict import TensorDict

from marl_torchrl import keys
from marl_torchrl.algorithms import build_algorithm
from marl_torchrl.config import CONFIG_DIR
from marl_torchrl.envs import describe, make_env
from marl_torchrl.registry import ConfigError

ALGORITHMS = sorted(p.stem for p in (CONFIG_DIR / "algorithm").glob("*.yaml"))
ENVS = sorted(str(p.relative_to(CONFIG_DIR / "env").with_suffix("")) for p in (CONFIG_DIR / "env").rglob("*.yaml"))
# Value-based algorithms pick an argmax over discrete actions: continuous actions are invalid by design.
Q_LEARNING = {"iql", "vdn", "qmix", "qmix_nonmono", "ow_qmix", "cw_qmix"}
SMALL = ["model.hidden_dim=16"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One env step of a small net: more threads only add overhead (and stall on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_the_config_files_are_found():
    assert {"iql", "vdn", "qmix"} <= set(ALGORITHMS)
    assert {"vmas/balance", "matrix/one_step", "matrix/two_step", "matrix/nonmonotonic"} <= set(ENVS)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_algorithm_config_is_named_after_its_file(algorithm):
    """``algorithm=<file>`` on the command line; ``algorithm.name`` goes into checkpoints and run dirs."""
    cfg = compose_cfg(f"algorithm={algorithm}")
    assert cfg.algorithm.name == algorithm


@pytest.mark.parametrize("env_name", ENVS)
def test_env_config_names_an_existing_family(env_name):
    cfg = compose_cfg(f"env={env_name}")
    assert cfg.env.family == env_name.split("/")[0]
    assert cfg.env.task


def _act_one_step(cfg, num_envs=2):
    env = make_env(cfg.env, num_envs=num_envs, seed=0)
    info = describe(env)
    parts = build_algorithm(cfg, info, "cpu")
    for t in parts.env_transforms:
        env.append_transform(t)
    td = env.reset()
    with torch.no_grad():
        td = parts.policy(td)
    return env, info, parts, td


def _check_action(env, info, td, num_envs):
    action = td.get(keys.ACTION)
    if info.continuous:
        assert action.shape[:2] == (num_envs, info.n_agents) and action.is_floating_point()
        low, high = info.action_low, info.action_high
        assert ((action >= low - 1e-5) & (action <= high + 1e-5)).all()
    else:
        assert action.shape == (num_envs, info.n_agents)
        assert action.dtype == torch.int64
        assert ((action >= 0) & (action < info.n_actions)).all()
    # the action steps the env
    out = env.step(td)
    reward = out.get(("next", keys.REWARD))
    assert reward.shape == (num_envs, 1) and torch.isfinite(reward).all()


@pytest.mark.parametrize("env_name", family_params(ENVS))
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_builds_and_acts_on_every_env(algorithm, env_name):
    cfg = compose_cfg(f"algorithm={algorithm}", f"env={env_name}", *SMALL)
    env_probe = make_env(cfg.env, num_envs=2)
    info = describe(env_probe)
    if info.continuous and algorithm in Q_LEARNING:
        with pytest.raises(ConfigError, match="discrete"):
            build_algorithm(cfg, info, "cpu")
        return
    env, info, parts, td = _act_one_step(cfg)
    assert parts.policy is not None and parts.loss is not None
    assert parts.optimizers and all(isinstance(o, torch.optim.Optimizer) for o in parts.optimizers.values())
    assert parts.target_updater is not None
    _check_action(env, info, td, 2)
    # the loss has parameters to train, and every optimiser holds some
    assert any(p.requires_grad for p in parts.loss.parameters())
    for opt in parts.optimizers.values():
        assert sum(p.numel() for g in opt.param_groups for p in g["params"]) > 0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_continuous_actions_build_or_fail_in_one_line(algorithm):
    """``env.continuous_actions=true``: Q-learning refuses in one line; an actor-critic acts in bounds."""
    cfg = compose_cfg(f"algorithm={algorithm}", "env=vmas/balance", "env.continuous_actions=true", *SMALL)
    info = describe(make_env(cfg.env, num_envs=2))
    assert info.continuous and info.n_actions is None
    if algorithm in Q_LEARNING:
        with pytest.raises(ConfigError, match="discrete") as err:
            build_algorithm(cfg, info, "cpu")
        assert "\n" not in str(err.value)
        return
    try:
        env, info, parts, td = _act_one_step(cfg)
    except ConfigError as err:  # an algorithm that is discrete-only by design, refused in one line
        assert "\n" not in str(err)
        return
    _check_action(env, info, td, 2)


def test_vmas_overrides_take_effect():
    cfg = compose_cfg("env=vmas/balance", "env.num_envs=3", "env.scenario_kwargs.n_agents=3", "env.max_steps=7")
    assert cfg.env.num_envs == 3 and cfg.env.scenario_kwargs.n_agents == 3
    env = make_env(cfg.env)
    info = describe(env)
    assert env.batch_size == torch.Size([3])
    assert info.n_agents == 3 and info.max_steps == 7
    assert env.reset().get(keys.OBS).shape[:2] == (3, 3)
    # and the default really is different (the override is what changed it)
    default = compose_cfg("env=vmas/balance")
    assert default.env.num_envs != 3 and default.env.scenario_kwargs.n_agents != 3


def test_matrix_payoff_override_sets_agents_and_actions():
    cfg = compose_cfg("env=matrix/one_step", "env.payoff=[[[1,0,0],[0,0,0],[0,0,0]],"
                      "[[0,0,0],[0,0,0],[0,0,0]],[[0,0,0],[0,0,0],[0,0,2]]]")
    info = describe(make_env(cfg.env, num_envs=2))
    assert (info.n_agents, info.n_actions) == (3, 3)


def test_logger_list_composes():
    cfg = compose_cfg("logger=[csv,wandb,tensorboard]")
    assert list(cfg.logger) == ["csv", "wandb", "tensorboard"]
    assert list(compose_cfg().logger) == ["csv"]


def test_common_overrides_compose():
    cfg = compose_cfg("seed=7", "device=cpu", "total_frames=1234", "resume=null", "model.type=mlp")
    assert (cfg.seed, cfg.device, cfg.total_frames, cfg.resume, cfg.model.type) == (7, "cpu", 1234, None, "mlp")


def test_default_config_builds():
    """``marl-train`` with no arguments: the defaults compose, build and act."""
    cfg = compose_cfg()
    env, info, parts, td = _act_one_step(cfg, num_envs=2)
    _check_action(env, info, td, 2)
    assert math.isfinite(float(cfg.total_frames)) and cfg.total_frames > 0
