"""FACMAC with a stochastic actor (``algorithm.stochastic_actor=true``): soft targets, the entropy bonus
in the actor loss, the learned temperature, masks, the refusal of target smoothing (the other refusals are in
test_facmac.py), the recurrent contract and tiny runs."""
from __future__ import annotations

import math

import pytest
import torch
from actor_critic_helpers import TINY_VMAS, assert_actor_outputs_match_acting, assert_checkpoint_evaluates_deterministically

from test_facmac_matrix import FACMAC_UNIFORM

from marl_torchrl import keys
from marl_torchrl.algorithms.facmac import build_facmac
from marl_torchrl.checkpoint import load_checkpoint
from marl_torchrl.data.synthetic import random_sequences
from marl_torchrl.envs import EnvSpecInfo
from marl_torchrl.modules import NonMonotonicMixer, SharedAgentNet, VDNMixer
from marl_torchrl.modules.actors import TanhBounded
from marl_torchrl.modules.critics import AgentActionCritic
from marl_torchrl.objectives.facmac_soft import SoftFACMACLoss
from marl_torchrl.objectives.sequence_ops import masked_mean
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run
from marl_torchrl.update import gradient_step

A, F, D, S, H, N = 2, 3, 2, 6, 8, 4
INFO = EnvSpecInfo(A, F, S, D, True, [[-2.0] * D] * A, [[2.0] * D] * A, False, 10)


def _batch(*, continuous=True, action_mask=False):
    torch.manual_seed(0)
    batch = random_sequences(batch=6, seq_len=5, n_agents=A, obs_dim=F, n_actions=N, state_dim=S, hidden_dim=H,
                             action_mask=action_mask)
    if continuous:
        batch[keys.ACTION] = torch.rand(6, 6, A, D) * 4 - 2
    return batch


def _continuous_loss(independent=False, **kw):
    return SoftFACMACLoss(SharedAgentNet(F, A, 2 * D, hidden_dim=H), AgentActionCritic(F, D, A, discrete=False, hidden_dim=H),
                          None if independent else VDNMixer(A, "cpu"),
                          bound=TanhBounded(-2 * torch.ones(A, D), 2 * torch.ones(A, D)), td_lambda=0.0, **kw)


def _discrete_loss(mixer=None, **kw):
    return SoftFACMACLoss(SharedAgentNet(F, A, N, hidden_dim=H), AgentActionCritic(F, N, A, discrete=True, hidden_dim=H),
                          mixer, n_actions=N, td_lambda=0.0, **kw)


@pytest.mark.parametrize("independent", [False, True])
def test_targets_are_soft_values_of_the_sampled_next_actions(independent):
    torch.manual_seed(0)
    loss = _continuous_loss(independent, alpha_init=1.0)
    sampled = []
    original = loss._sample

    def record(raw, avail, *, relaxed):
        action, log_pi = original(raw, avail, relaxed=relaxed)
        if not relaxed:
            sampled.append(log_pi)
        return action, log_pi

    loss._sample = record
    batch = _batch()
    torch.manual_seed(1)
    soft = loss(batch)["target_value"]
    with torch.no_grad():
        loss.log_alpha.fill_(math.log(1e-12))  # the same samples (alpha does not change them), no entropy
    torch.manual_seed(1)
    hard = loss(batch)["target_value"]
    b = loss.read_batch(batch, loss.actor, action_mask=False)
    log_pi = sampled[0] if independent else sampled[0].sum(-1, keepdim=True)  # per agent, or the joint one
    expected = masked_mean(-0.99 * (1.0 - b.terminated.float()) * log_pi, b.valid)  # 1-step: r + gamma V(s')
    torch.testing.assert_close(soft - hard, expected, atol=1e-5, rtol=1e-4)


def test_flat_critic_leaves_the_entropy_bonus_to_spread_a_peaked_discrete_actor():
    torch.manual_seed(0)
    loss = _discrete_loss(VDNMixer(A, "cpu"), alpha_init=0.5, learn_alpha=False)
    loss.critic.register_forward_hook(lambda m, args, out: out * 0.0)  # every joint action worth the same
    with torch.no_grad():
        loss.actor.head.bias.copy_(torch.tensor([6.0, 0.0, 0.0, 0.0]))
    opt = torch.optim.Adam(loss.actor.parameters(), lr=0.05)
    batch = _batch(continuous=False)
    before = float(loss(batch)["entropy"])  # per agent and step
    for _ in range(60):
        opt.zero_grad()
        loss(batch)["loss_actor"].backward()
        opt.step()
    after = float(loss(batch)["entropy"])
    assert before < 0.2 and after > 0.9 * math.log(N), (before, after)


@pytest.mark.parametrize("target_entropy, direction", [(5.0, 1), (-10.0, -1)])
def test_the_temperature_moves_toward_its_target_entropy(target_entropy, direction):
    torch.manual_seed(0)
    parts = build_facmac(dict(name="facmac", mixer="vdn", stochastic_actor=True, target_entropy=target_entropy,
                              alpha_init=0.1), dict(type="gru", hidden_dim=H), INFO, "cpu", 1000)
    for _ in range(3):
        gradient_step(parts, _batch())
    assert direction * (float(parts.loss.log_alpha.exp()) - 0.1) > 0
    assert parts.loss.actor.head.out_features == 2 * D  # mean and log-std


def test_sampled_actions_respect_masks_in_targets_and_in_the_actor_term():
    loss = _discrete_loss(NonMonotonicMixer(A, S, mixing_embed_dim=8))
    batch = _batch(continuous=False, action_mask=True)
    seen = []
    for critic in (loss.critic, loss.critic_target):
        critic.register_forward_hook(lambda m, args, out: seen.append(args[1].detach()))
    for _ in range(5):
        loss(batch)
    mask = batch[keys.ACTION_MASK].bool()
    for taken, target_actions, actor_actions in zip(seen[::3], seen[1::3], seen[2::3]):
        assert torch.all(target_actions[~mask[:, 1:]] == 0) and torch.all(actor_actions[~mask[:, :-1]] == 0)
        assert torch.all(target_actions.sum(-1) == 1) and torch.all(actor_actions.sum(-1) == 1)


def test_continuous_regularisers_act_on_the_mean_not_on_the_log_std():
    loss = _continuous_loss(action_reg=1.0, learn_alpha=False, alpha_init=1e-12)  # next to no entropy term
    loss.critic.register_forward_hook(lambda m, args, out: out * 0.0)  # and a flat critic: only the regulariser
    with torch.no_grad():
        loss.actor.head.bias.fill_(1.0)
    out = loss(_batch())
    out["loss_actor"].backward()
    grad = loss.actor.head.bias.grad  # [mean (D), log-std (D)]
    assert grad[:D].abs().min() > 1e-3 and grad[D:].abs().max() < 1e-9, grad
    assert 0.0 <= float(out["action_saturation"]) <= 1.0


def test_target_smoothing_is_refused_with_a_stochastic_actor(make_cfg, tmp_path):
    cfg = make_cfg(["algorithm=facmac", "env.continuous_actions=true", "algorithm.stochastic_actor=true",
                    "algorithm.target_noise=0.2", *TINY_VMAS])
    with pytest.raises(ConfigError, match="target_noise .*needs a deterministic actor"):
        run(cfg, tmp_path)


@pytest.mark.parametrize("continuous", [False, True])
def test_recurrent_contract_stochastic_actor_outputs_match_acting(continuous):
    parts, seqs = assert_actor_outputs_match_acting(
        build_facmac, dict(name="facmac", mixer="nonmonotonic", stochastic_actor=True), continuous=continuous,
        out_key=keys.ACTOR_OUTPUT,
    )
    with torch.no_grad():
        out = parts.loss(seqs)
    assert torch.isfinite(out["loss_actor"]) and torch.isfinite(out["loss_qvalue"])


@pytest.mark.parametrize("continuous", ["false", "true"])
def test_tiny_vmas_run_with_a_stochastic_actor(make_cfg, tmp_path, continuous):
    cfg = make_cfg(["algorithm=facmac", f"env.continuous_actions={continuous}", "algorithm.stochastic_actor=true",
                    *TINY_VMAS])
    metrics = run(cfg, tmp_path)
    for name in ("train/loss_actor", "train/loss_qvalue", "train/loss_alpha", "train/alpha", "train/entropy",
                 "eval/ep_reward"):
        assert name in metrics, name
    assert "rollout/noise_sigma" not in metrics and "rollout/epsilon" not in metrics  # it explores by sampling
    assert_checkpoint_evaluates_deterministically(tmp_path)  # evaluation plays the mode
    parts = load_checkpoint(tmp_path / "models" / "final_model.pt")["parts"]  # resume restores the temperature
    assert float(parts["loss"]["log_alpha"]) == pytest.approx(math.log(metrics["train/alpha"]), abs=0.05)
    assert parts["optimizers"]["loss_alpha"]["state"], "the temperature's optimiser state is not checkpointed"


@pytest.mark.parametrize("seed", [0, 1])
def test_two_step_game_stochastic_facmac_earns_8(make_cfg, tmp_path, seed):
    """From its own sampled actions (no epsilon), the stochastic actor still finds the 8 of the two-step game."""
    overrides = [o for o in FACMAC_UNIFORM if "eps_" not in o] + ["algorithm.stochastic_actor=true"]
    cfg = make_cfg(overrides + ["env=matrix/two_step", f"seed={seed}", "total_frames=12800"])
    assert run(cfg, tmp_path)["eval/ep_reward"] == pytest.approx(8.0, abs=0.1)
