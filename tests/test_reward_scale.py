"""``algorithm.reward_scale``: every sequence loss trains on the team reward times the scale (after
standardisation), so a scaled run's losses and targets are those of a run on scaled rewards; stacked seeds
scale as their separate runs do; a scale <= 0 is refused in one line."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from marl_torchrl import keys
from marl_torchrl.algorithms.dop import build_dop
from marl_torchrl.algorithms.facmac import build_facmac
from marl_torchrl.algorithms.value_decomposition import build_value_decomposition
from marl_torchrl.config import DOPConfig, FACMACConfig, ModelConfig, ValueDecompositionConfig
from marl_torchrl.config.fields import validate
from marl_torchrl.data.synthetic import random_sequences
from marl_torchrl.envs import EnvSpecInfo
from marl_torchrl.registry import ConfigError
from marl_torchrl.seeds.loss import StackedValueDecompositionLoss
from marl_torchrl.seeds.stacked import StackedLearners
from marl_torchrl.update import gradient_step

A, F, S, N, H = 3, 5, 7, 4, 16
INFO = EnvSpecInfo(n_agents=A, obs_dim=F, state_dim=S, n_actions=N, continuous=False, action_low=None,
                   action_high=None, has_action_mask=True, max_steps=20)
MODEL = ModelConfig(hidden_dim=H)
CONFIGS = {
    "qmix": (build_value_decomposition, ValueDecompositionConfig(name="qmix", mixer="qmix")),
    "qmix_standardised": (build_value_decomposition,
                          ValueDecompositionConfig(name="qmix", mixer="qmix", standardise_rewards=True)),
    "facmac": (build_facmac, FACMACConfig(name="facmac")),
    "dop": (build_dop, DOPConfig(name="dop")),
}


def batch(seed=0, scale=1.0):
    td = random_sequences(batch=4, seq_len=6, n_agents=A, obs_dim=F, n_actions=N, state_dim=S, hidden_dim=H,
                          action_mask=True, generator=torch.Generator().manual_seed(seed))
    td[keys.REWARD] = td[keys.REWARD] * scale
    return td


def losses(build, cfg, td):
    torch.manual_seed(0)  # same initial parameters for every build
    parts = build(cfg, MODEL, INFO, "cpu", total_frames=1000)
    torch.manual_seed(1)  # same sampling (Gumbel, DOP's actions) in every loss call
    return parts.loss(td)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_scaled_loss_is_the_loss_of_scaled_rewards(name):
    build, cfg = CONFIGS[name]
    scaled = losses(build, dataclasses.replace(cfg, reward_scale=10.0), batch())
    plain = losses(build, cfg, batch(scale=10.0))
    reference = losses(build, cfg, batch())
    if cfg.standardise_rewards:  # standardised first: the scale multiplies what the standardiser gives
        assert not torch.allclose(scaled["target_value"], plain["target_value"])
        assert torch.allclose(plain["target_value"], reference["target_value"], atol=1e-5)
        return
    for key in ("target_value", "loss_qvalue", "loss"):
        if key in scaled.keys():
            assert torch.allclose(scaled[key], plain[key], rtol=1e-5, atol=1e-6), key
    assert not torch.allclose(scaled["target_value"], reference["target_value"])


def test_stacked_seeds_scale_as_their_separate_runs():
    cfg = ValueDecompositionConfig(name="qmix", mixer="qmix", reward_scale=10.0)
    stack = StackedLearners.build([0, 1], cfg, MODEL, INFO, "cpu", total_frames=1000)
    alone = []
    for s in (0, 1):
        torch.manual_seed(s)
        alone.append(build_value_decomposition(cfg, MODEL, INFO, "cpu", total_frames=1000))
    batches = [batch(s) for s in (0, 1)]
    logs = stack.step(batches)
    for s in (0, 1):
        ref = gradient_step(alone[s], batches[s])
        for key in ("loss", "target_value"):
            assert torch.allclose(logs[s][key], ref[key], rtol=1e-4, atol=1e-5), (s, key)
    mixed = [build_value_decomposition(dataclasses.replace(cfg, reward_scale=r), MODEL, INFO, "cpu",
                                       total_frames=1000) for r in (1.0, 10.0)]
    with pytest.raises(ConfigError, match="differ in reward_scale"):
        StackedValueDecompositionLoss([p.loss for p in mixed])


@pytest.mark.parametrize("value", [0.0, -1.0])
def test_non_positive_scale_is_refused(value):
    with pytest.raises(ConfigError, match="reward_scale must be > 0"):
        validate(ValueDecompositionConfig(name="qmix", mixer="qmix", reward_scale=value), "algorithm")
