"""FACMAC's TD3 options: twin critics (clipped double Q), target policy smoothing, delayed actor updates;
their config checks and a tiny continuous VMAS run with all three."""
from __future__ import annotations

import pytest
import torch
from actor_critic_helpers import TINY_VMAS, assert_checkpoint_evaluates_deterministically

from marl_torchrl import keys
from marl_torchrl.algorithms.facmac import build_facmac
from marl_torchrl.data.synthetic import random_sequences
from marl_torchrl.envs import EnvSpecInfo
from marl_torchrl.modules import SharedAgentNet, VDNMixer
from marl_torchrl.modules.actors import TanhBounded
from marl_torchrl.modules.critics import AgentActionCritic
from marl_torchrl.objectives.facmac import FACMACLoss
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run
from marl_torchrl.update import gradient_step

A, F, D, S, H = 2, 3, 2, 6, 8
INFO = EnvSpecInfo(A, F, S, D, True, [[-2.0] * D] * A, [[2.0] * D] * A, False, 10)


def _batch():
    torch.manual_seed(0)
    batch = random_sequences(batch=6, seq_len=5, n_agents=A, obs_dim=F, n_actions=D, state_dim=S, hidden_dim=H)
    batch[keys.ACTION] = torch.rand(6, 6, A, D) * 4 - 2
    return batch


def _loss(**kw):
    critic = lambda: AgentActionCritic(F, D, A, discrete=False, hidden_dim=H)  # noqa: E731
    return FACMACLoss(SharedAgentNet(F, A, D, hidden_dim=H), critic(), VDNMixer(A, "cpu"),
                      bound=TanhBounded(-2 * torch.ones(A, D), 2 * torch.ones(A, D)), td_lambda=0.0, **kw)


def test_twin_targets_take_the_smaller_mixed_value():
    torch.manual_seed(0)
    loss = _loss(twin_critic=AgentActionCritic(F, D, A, discrete=False, hidden_dim=H), twin_mixer=VDNMixer(A, "cpu"))
    loss.twin_critic_target.load_state_dict(loss.critic_target.state_dict())
    single = loss(_batch())["target_value"]  # both targets equal: the minimum is either
    loss.twin_critic_target.register_forward_hook(lambda m, args, out: out - 1.0)  # twin lower by 1 per agent
    twin = loss(_batch())["target_value"]
    # 1-step targets, no episode ends: the mixed (summed) next value is A lower, discounted by gamma
    torch.testing.assert_close(single - twin, torch.tensor(0.99 * A))
    loss.twin_critic_target.register_forward_hook(lambda m, args, out: out + 3.0)  # now the twin is higher
    torch.testing.assert_close(loss(_batch())["target_value"], single)


def test_twin_critic_is_trained_by_the_critic_loss_and_never_by_the_actor():
    loss = _loss(twin_critic=AgentActionCritic(F, D, A, discrete=False, hidden_dim=H), twin_mixer=VDNMixer(A, "cpu"))
    out = loss(_batch())
    out["loss_actor"].backward(retain_graph=True)
    assert all(p.grad is None for p in loss.twin_critic.parameters())
    out["loss_qvalue"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in loss.twin_critic.parameters())
    assert {t for _, t in loss.target_pairs()} >= {loss.twin_critic_target}


def test_target_noise_is_clipped_and_stays_inside_the_bounds():
    torch.manual_seed(0)
    loss = _loss(target_noise=0.3, target_noise_clip=0.25)
    raw = torch.randn(4000, A, D) * 3
    clean, noisy = loss.bound(raw), loss._target_action(raw, None)
    assert ((noisy >= -2) & (noisy <= 2)).all()
    shift = (noisy - clean).abs()
    assert shift.max() <= 0.25 * 2 + 1e-6  # clip 0.25 half ranges, half range 2
    assert shift.mean() > 0.1
    torch.testing.assert_close(_loss()._target_action(raw, None), clean)  # no noise: the bounded action


def test_policy_delay_updates_the_actor_every_other_step_and_the_critic_every_step():
    torch.manual_seed(0)
    parts = build_facmac(dict(name="facmac", mixer="vdn", policy_delay=2, twin_critics=True, target_noise=0.2),
                         dict(type="gru", hidden_dim=H), INFO, "cpu", 1000)
    batch = _batch()
    moved = []
    for _ in range(4):
        before = [[p.detach().clone() for p in m.parameters()] for m in (parts.loss.actor, parts.loss.twin_critic)]
        gradient_step(parts, batch)
        after = [list(m.parameters()) for m in (parts.loss.actor, parts.loss.twin_critic)]
        moved.append(tuple(any(not torch.equal(b, a) for b, a in zip(bs, as_)) for bs, as_ in zip(before, after)))
    assert moved == [(True, True), (False, True), (True, True), (False, True)]


@pytest.mark.parametrize("overrides, message", [
    (["algorithm.policy_delay=0"], "policy_delay must be > 0"),
    (["algorithm.target_noise=-0.1"], "target_noise must be >= 0"),
    (["algorithm.target_noise=0.2"], "target_noise .*needs continuous actions"),
])
def test_bad_td3_options_are_one_clear_error(make_cfg, tmp_path, overrides, message):
    cfg = make_cfg(["algorithm=facmac", "env=matrix/two_step", "total_frames=100"] + overrides)
    with pytest.raises(ConfigError, match=message):
        run(cfg, tmp_path)


def test_tiny_continuous_vmas_run_with_td3_options(make_cfg, tmp_path):
    cfg = make_cfg(["algorithm=facmac", "env.continuous_actions=true", "algorithm.twin_critics=true",
                    "algorithm.target_noise=0.2", "algorithm.policy_delay=2", *TINY_VMAS])
    metrics = run(cfg, tmp_path)
    for name in ("train/loss_actor", "train/loss_qvalue", "train/q_value_policy", "eval/ep_reward"):
        assert name in metrics, name
    assert_checkpoint_evaluates_deterministically(tmp_path)
