"""FACMAC: where gradients go, Gumbel-Softmax and masks, continuous bounds, the recurrent contract,
bad input, and tiny runs on VMAS (discrete and continuous) and on the matrix games."""
from __future__ import annotations

import pytest
import torch
from actor_critic_helpers import (
    TINY_VMAS, assert_actor_outputs_match_acting, assert_checkpoint_evaluates_deterministically,
)
from tensordict import TensorDict
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules.models.multiagent import Mixer

from marl_torchrl import keys
from marl_torchrl.algorithms.facmac import build_facmac
from marl_torchrl.data.synthetic import random_sequences
from marl_torchrl.envs import EnvSpecInfo
from marl_torchrl.modules import NonMonotonicMixer, SharedAgentNet
from marl_torchrl.modules.actors import TanhBounded, greedy_one_hot, gumbel_softmax_st
from marl_torchrl.modules.critics import AgentActionCritic
from marl_torchrl.objectives.facmac import FACMACLoss
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run

A, F, N, S, H = 2, 3, 4, 6, 8


class LinearMixer(Mixer):
    """Q_tot = sum_i w_i q_i with a learnable w (to see gradient pass through a mixer)."""

    def __init__(self, w):
        super().__init__(n_agents=len(w), needs_state=False, state_shape=torch.Size([]), device="cpu")
        self.w = torch.nn.Parameter(torch.tensor(w))

    def mix(self, q, state):
        return (q.squeeze(-1) * self.w).sum(-1, keepdim=True)


def _batch(**kw):
    torch.manual_seed(0)
    return random_sequences(batch=6, seq_len=5, n_agents=A, obs_dim=F, n_actions=N, state_dim=S, hidden_dim=H, **kw)


def _loss(mixer, **kw):
    return FACMACLoss(SharedAgentNet(F, A, N, hidden_dim=H), AgentActionCritic(F, N, A, discrete=True, hidden_dim=H), mixer,
                      n_actions=N, **kw)


def _grads(module):
    return [p.grad for p in module.parameters()]


def test_gumbel_softmax_is_one_hot_forward_with_a_soft_gradient():
    torch.manual_seed(0)
    logits = torch.randn(64, N, requires_grad=True)
    sample = gumbel_softmax_st(logits, temperature=1.0)
    assert torch.all(sample.sum(-1) == 1) and torch.all((sample == 0) | (sample == 1))
    (sample * torch.arange(N).float()).sum().backward()
    # a soft gradient: every logit of a row moves, not only the chosen one
    assert (logits.grad.abs() > 0).all()


def test_masked_actions_are_never_chosen_sampled_or_targeted():
    torch.manual_seed(0)
    mask = torch.tensor([True, False, True, False]).expand(2000, N)
    logits = torch.randn(2000, N) * 5
    assert gumbel_softmax_st(logits, mask=mask)[:, ~mask[0]].sum() == 0
    assert greedy_one_hot(logits, mask)[:, ~mask[0]].sum() == 0
    # acting, with epsilon = 1 (uniform over available actions) and greedily
    info = EnvSpecInfo(A, F, S, N, False, None, None, True, 10)
    parts = build_facmac(dict(name="facmac", mixer="vdn", target_tau=0.01, eps_start=1.0, eps_end=1.0),
                         dict(type="mlp", hidden_dim=H), info, "cpu", 100)
    td = TensorDict({keys.OBS: torch.randn(2000, A, F), keys.ACTION_MASK: mask[:, None].expand(2000, A, N)}, [2000])
    for mode in (ExplorationType.RANDOM, ExplorationType.DETERMINISTIC):
        with set_exploration_type(mode):
            actions = parts.policy(td.clone())[keys.ACTION]
        assert set(actions.unique().tolist()) <= {0, 2}


def test_actor_gradient_flows_through_the_mixer_into_the_actor_only():
    loss = _loss(LinearMixer([1.0, -1.0]))
    out = loss(_batch())
    out["loss_actor"].backward()
    assert all(g is not None and g.abs().sum() > 0 for g in _grads(loss.actor))
    assert all(g is None for g in _grads(loss.critic) + _grads(loss.mixer))
    for target in (loss.actor_target, loss.critic_target, loss.mixer_target):
        assert all(not p.requires_grad and p.grad is None for p in target.parameters())
    # through the mixer: with zero mixing weights the actor gets no gradient at all
    zero = _loss(LinearMixer([0.0, 0.0]))
    zero(_batch())["loss_actor"].backward()
    assert all(g is None or g.abs().sum() == 0 for g in _grads(zero.actor))


def test_critic_loss_trains_critic_and_mixer_not_the_actor():
    loss = _loss(NonMonotonicMixer(A, S, mixing_embed_dim=8))
    loss(_batch())["loss_qvalue"].backward()
    assert all(g is None for g in _grads(loss.actor))
    assert all(g is not None for g in _grads(loss.critic) + _grads(loss.mixer))


def test_continuous_actor_is_bounded_and_regularised():
    low, high = torch.tensor([[-2.0], [0.0]]), torch.tensor([[2.0], [1.0]])
    bound = TanhBounded(low, high)
    actions = bound(torch.randn(100, A, 1) * 10)
    assert ((actions >= low) & (actions <= high)).all()
    actor, critic = SharedAgentNet(F, A, 1, hidden_dim=H), AgentActionCritic(F, 1, A, hidden_dim=H)
    batch = _batch()
    batch[keys.ACTION] = torch.rand(6, 6, A, 1)
    with_reg = FACMACLoss(actor, critic, None, bound=bound, action_reg=1.0)(batch)["loss_actor"]
    without = FACMACLoss(actor, critic, None, bound=bound, action_reg=0.0)(batch)["loss_actor"]
    assert with_reg > without


def test_preact_reg_pulls_a_saturated_actor_back_where_tanh_squared_cannot():
    """At |raw| = 6 tanh is saturated: mean(tanh(raw)^2)'s gradient is ~0 there, mean(raw^2)'s is not."""
    bound = TanhBounded(-torch.ones(A, 1), torch.ones(A, 1))
    batch = _batch()
    batch[keys.ACTION] = torch.rand(6, 6, A, 1)

    def actor_bias_grad(**reg):
        torch.manual_seed(1)
        actor = SharedAgentNet(F, A, 1, hidden_dim=H)
        with torch.no_grad():  # every raw output at +6: saturated
            actor.head.weight.zero_()
            actor.head.bias.fill_(6.0)
        critic = AgentActionCritic(F, 1, A, hidden_dim=H)
        for p in critic.parameters():  # a critic indifferent to actions: only the regulariser moves the actor
            p.data.zero_()
        out = FACMACLoss(actor, critic, None, bound=bound, **reg)(batch)
        out["loss_actor"].backward()
        return actor.head.bias.grad.abs().max().item(), out["action_saturation"].item()

    tanh_grad, saturation = actor_bias_grad(action_reg=1.0, preact_reg=0.0)
    pre_grad, _ = actor_bias_grad(action_reg=0.0, preact_reg=1.0)
    assert saturation == 1.0  # every component of every valid step at |tanh| > 0.99
    assert tanh_grad < 1e-3 and pre_grad > 1.0  # d/du mean(u^2) = 2u/n per component: 12 at u=6 summed over steps
    with pytest.raises(ConfigError, match="preact_reg >= 0"):
        FACMACLoss(SharedAgentNet(F, A, 1, hidden_dim=H), AgentActionCritic(F, 1, A, hidden_dim=H), None,
                   bound=bound, preact_reg=-1.0)


@pytest.mark.parametrize("overrides, message", [
    (["algorithm.mixer=qmx"], "unknown mixer 'qmx'"),
    (["algorithm.actor_lr=0"], "lr must be > 0"),
    (["algorithm.gumbel_temperature=0"], "gumbel_temperature( must be)? > 0"),
    (["algorithm.mixer_options.init_scale=-1"], "init_scale must be > 0"),
    # keys that would do nothing: the temperature without a stochastic actor, epsilon with one
    (["algorithm.alpha_init=0.1"], "alpha_init has no effect with algorithm.stochastic_actor=false"),
    (["algorithm.stochastic_actor=true", "algorithm.eps_end=0.1"], "eps_end has no effect with .*=true"),
    (["algorithm.stochastic_actor=true", "algorithm.alpha_init=0"], "alpha_init must be > 0"),
])
def test_bad_config_is_a_clear_error(make_cfg, tmp_path, overrides, message):
    cfg = make_cfg(["algorithm=facmac", "env=matrix/two_step", "total_frames=100"] + overrides)
    with pytest.raises(ConfigError, match=message):
        run(cfg, tmp_path)


def test_continuous_actions_without_bounds_are_an_error():
    info = EnvSpecInfo(A, F, S, 1, True, [[-float("inf")]] * A, [[float("inf")]] * A, False, 10)
    with pytest.raises(ConfigError, match="finite bounds"):
        build_facmac(dict(name="facmac", target_tau=0.01), {}, info, "cpu", 100)
    info = EnvSpecInfo(A, F, S, 1, True, None, None, False, 10)
    with pytest.raises(ConfigError, match="finite bounds"):
        build_facmac(dict(name="facmac", target_tau=0.01), {}, info, "cpu", 100)


@pytest.mark.parametrize("continuous", [False, True])
def test_recurrent_contract_actor_outputs_match_acting(continuous):
    parts, seqs = assert_actor_outputs_match_acting(
        build_facmac, dict(name="facmac", mixer="nonmonotonic", target_tau=0.01), continuous=continuous,
        out_key=keys.ACTOR_OUTPUT if continuous else keys.ACTION_VALUE,
    )
    with torch.no_grad():
        out = parts.loss(seqs)
    assert torch.isfinite(out["loss_actor"]) and torch.isfinite(out["loss_qvalue"])


@pytest.mark.parametrize("continuous", ["false", "true"])
def test_tiny_vmas_run(make_cfg, tmp_path, continuous):
    cfg = make_cfg(["algorithm=facmac", f"env.continuous_actions={continuous}", *TINY_VMAS])
    metrics = run(cfg, tmp_path)
    expected = "rollout/noise_sigma" if continuous == "true" else "rollout/epsilon"
    for name in ("train/loss", "train/loss_actor", "train/loss_qvalue", "train/td_error", "eval/ep_reward", expected):
        assert name in metrics, name
    assert_checkpoint_evaluates_deterministically(tmp_path)  # greedy, noise-free decentralised actors


def test_target_and_actor_actions_respect_masks():
    loss = _loss(NonMonotonicMixer(A, S, mixing_embed_dim=8))
    batch = _batch(action_mask=True)
    seen = []
    for critic in (loss.critic, loss.critic_target):
        critic.register_forward_hook(lambda m, args, out: seen.append(args[1].detach()))
    loss(batch)
    mask = batch[keys.ACTION_MASK].bool()
    taken, target_actions, actor_actions = seen
    assert torch.all(target_actions[~mask[:, 1:]] == 0)  # the target actor's greedy one-hot
    assert torch.all(actor_actions[~mask[:, :-1]] == 0)  # the actor's Gumbel-Softmax sample
    assert torch.all(target_actions.sum(-1) == 1) and torch.all(actor_actions.sum(-1) == 1)
