"""The typed config is the one source of defaults, and every key reaches what it configures."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml

from marl_torchrl.algorithms import build_algorithm
from marl_torchrl.algorithms.value_decomposition import build_value_decomposition
from marl_torchrl.config import (
    ALGORITHM_SCHEMAS, CONFIG_DIR, ModelConfig, ValueDecompositionConfig, compose_config, env_config, schema_name,
)
from marl_torchrl.envs import EnvSpecInfo, describe, make_env
from marl_torchrl.registry import ConfigError

PRESETS = sorted(p.stem for p in (CONFIG_DIR / "algorithm").glob("*.yaml"))
ENV_PRESETS = sorted(str(p.relative_to(CONFIG_DIR / "env").with_suffix(""))
                     for p in (CONFIG_DIR / "env").rglob("*.yaml"))
INFO = EnvSpecInfo(n_agents=2, obs_dim=3, state_dim=6, n_actions=4, continuous=False,
                   action_low=None, action_high=None, has_action_mask=False, max_steps=10)


def _preset_values(path: Path) -> dict:
    values = yaml.safe_load(path.read_text())
    values.pop("defaults", None)
    return values


@pytest.mark.parametrize("preset", PRESETS)
def test_python_users_get_the_command_lines_numbers(preset):
    """The preset's dataclass built with only the keys the YAML names equals ``algorithm=<preset>``."""
    composed = compose_config(f"algorithm={preset}").algorithm
    schema = ALGORITHM_SCHEMAS[schema_name(composed, "algorithm")]
    assert composed == schema(**_preset_values(CONFIG_DIR / "algorithm" / f"{preset}.yaml"))


@pytest.mark.parametrize("preset", [f"algorithm/{p}" for p in PRESETS] + [f"env/{e}" for e in ENV_PRESETS])
def test_presets_name_only_what_differs_from_the_defaults(preset):
    """A preset value equal to its schema's default would be a second place for that default."""
    group, name = preset.split("/", 1)
    cfg = getattr(compose_config(f"{group}={name}"), group)
    defaults = type(cfg)()
    for key, value in _preset_values(CONFIG_DIR / group / f"{name}.yaml").items():
        if key in ("name", "task", "family"):
            continue
        assert getattr(defaults, key) != value, f"{preset}: {key}={value!r} repeats the schema default"


def test_builders_take_config_objects_and_give_the_cli_hyperparameters():
    cli = build_algorithm(compose_config("algorithm=qmix"), INFO, "cpu")
    py = build_value_decomposition(ValueDecompositionConfig(name="qmix", mixer="qmix"), ModelConfig(), INFO, "cpu",
                                   total_frames=500000)
    for attr in ("gamma", "td_lambda", "double_q", "burn_in", "loss_function"):
        assert getattr(cli.loss, attr) == getattr(py.loss, attr), attr
    assert cli.optimizers["loss"].defaults["lr"] == py.optimizers["loss"].defaults["lr"]
    assert cli.target_updater.state_dict() == py.target_updater.state_dict()
    assert float(cli.modules["exploration"].eps) == float(py.modules["exploration"].eps)


@pytest.mark.parametrize("algorithm", ["qmix", "facmac", "dop"])
def test_replay_burn_in_reaches_the_loss(algorithm):
    parts = build_algorithm(compose_config(f"algorithm={algorithm}", "replay.burn_in=3"), INFO, "cpu")
    assert parts.loss.burn_in == 3
    assert build_algorithm(compose_config(f"algorithm={algorithm}"), INFO, "cpu").loss.burn_in == 0


def test_mixer_options_reach_the_mixer_and_typos_are_refused_in_one_line():
    parts = build_algorithm(compose_config("algorithm=qmix", "algorithm.mixer_options.mixing_embed_dim=8"), INFO, "cpu")
    assert parts.loss.mixer.embed_dim == 8
    with pytest.raises(ConfigError, match="mixing_embd") as err:
        build_algorithm(compose_config("algorithm=qmix", "algorithm.mixer_options.mixing_embd=8"), INFO, "cpu")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("algorithm", ["qmix", "facmac", "dop", "pqn_qmix"])
def test_mixer_options_cannot_set_the_sizes_the_env_gives(algorithm):
    """Found by the config fuzz test: n_agents in mixer_options was a TypeError traceback at build time."""
    with pytest.raises(ConfigError, match="algorithm.mixer_options cannot set n_agents, state_dim"):
        compose_config(f"algorithm={algorithm}", "+algorithm.mixer_options.n_agents=2",
                       "+algorithm.mixer_options.state_dim=3")


def test_env_configs_from_mappings_are_checked():
    cfg = env_config({"family": "matrix", "task": "two_step", "num_envs": 3})
    assert type(cfg).__name__ == "MatrixTwoStepConfig" and cfg.payoff_2b == [[0, 1], [1, 8]]
    with pytest.raises(ConfigError, match="env.payoff"):
        env_config({"family": "matrix", "task": "two_step", "payoff": [[1]]})
    with pytest.raises(ConfigError, match="env.num_envs"):
        env_config({"family": "vmas", "task": "balance", "num_envs": 0})
    with pytest.raises(ConfigError, match="unknown matrix task"):
        env_config({"family": "matrix", "task": "three_step"})
    assert describe(make_env(cfg)).n_agents == 2


def test_checkpoint_configs_round_trip(tmp_path):
    from marl_torchrl.config import run_config_from_dict

    for preset in PRESETS:
        cfg = compose_config(f"algorithm={preset}", "env=matrix/nonmonotonic")
        back = run_config_from_dict(dataclasses.asdict(cfg), {"algorithm": schema_name(cfg.algorithm, "algorithm")})
        assert back == cfg, preset


def test_old_style_plain_dicts_still_build():
    """A checkpoint's plain config dict (no schema names) rebuilds through its preset's schema."""
    plain = dataclasses.asdict(compose_config("algorithm=ow_qmix", "env=matrix/two_step"))
    parts = build_algorithm(plain, describe(make_env(plain["env"], num_envs=2)), "cpu")
    assert parts.loss.weighting == "ow"
    assert torch.is_tensor(next(parts.loss.parameters()))


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_mixer_options_differ_from_the_mixers_own_defaults(preset):
    """A mixer's defaults live in its constructor; a preset's ``mixer_options`` only name what differs."""
    import inspect

    from marl_torchrl.modules import mixers

    algo = compose_config(f"algorithm={preset}").algorithm
    mixer = getattr(algo, "mixer", None) or ("dop" if type(algo).__name__ == "DOPConfig" else None)
    if not algo.mixer_options or mixer is None:
        return
    cls = type(mixers.make_mixer(mixer, n_agents=2, state_dim=3))
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    for key, value in algo.mixer_options.items():
        assert defaults.get(key, object()) != value, f"{preset}: mixer_options.{key}={value!r} repeats {cls.__name__}'s default"


def test_each_depth_key_belongs_to_one_network_type():
    """``model.layers`` is the MLP's depth, ``model.input_layers`` the GRU's: set for the other type, refused."""
    with pytest.raises(ConfigError, match="model.layers does nothing for model.type=gru: its depth is model.input_layers"):
        compose_config("model.layers=3")
    with pytest.raises(ConfigError, match="model.input_layers does nothing for model.type=mlp"):
        compose_config("model.type=mlp", "model.input_layers=2")
    assert compose_config("model.input_layers=2").model.input_layers == 2
    assert compose_config("model.type=mlp", "model.layers=3").model.layers == 3


def test_a_checkpoint_config_with_the_old_input_layer_key_loads():
    """Checkpoints from before ``model.input_layers`` stored ``model.input_layer`` (true: one layer, false: none)."""
    from marl_torchrl.config import run_config_from_dict

    for old_value, layers in ((True, 1), (False, 0)):
        old = dataclasses.asdict(compose_config("algorithm=qmix", "env=matrix/two_step"))
        del old["model"]["input_layers"]
        old["model"]["input_layer"] = old_value
        assert run_config_from_dict(old, {"algorithm": "value_decomposition"}).model.input_layers == layers
