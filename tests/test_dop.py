"""DOP-SAC: the linear mixer, twin critics, temperature, squashed-normal log-densities, masks, the
decomposed actor gradient, the recurrent contract, bad config, and tiny VMAS and matrix-game runs."""
from __future__ import annotations

import math

import pytest
import torch
from actor_critic_helpers import (
    TINY_VMAS, assert_actor_outputs_match_acting, assert_checkpoint_evaluates_deterministically,
)
from tensordict import TensorDict
from torchrl.envs.utils import ExplorationType, set_exploration_type

from marl_torchrl import keys
from marl_torchrl.algorithms.dop import build_dop
from marl_torchrl.data.synthetic import random_sequences
from marl_torchrl.envs import EnvSpecInfo
from marl_torchrl.modules import DOPMixer, SharedAgentNet
from marl_torchrl.modules.actors import TanhBounded
from marl_torchrl.modules.critics import HistoryCritic
from marl_torchrl.modules.stochastic import StochasticActionModule, masked_log_probs, squashed_normal_sample
from marl_torchrl.objectives.dop import DOPSACLoss
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run

A, F, N, S, H = 3, 4, 5, 6, 8


def _loss(discrete=True, **kw):
    torch.manual_seed(0)
    d = N if discrete else 2
    actor = SharedAgentNet(F, A, N if discrete else 2 * d, hidden_dim=H)
    critics = [HistoryCritic(F, d, A, discrete=discrete, hidden_dim=H) for _ in range(2)]
    bound = None if discrete else TanhBounded(-torch.ones(A, d), torch.ones(A, d))
    return DOPSACLoss(actor, critics, [DOPMixer(A, S), DOPMixer(A, S)], n_actions=N if discrete else None,
                      bound=bound, **kw)


def _batch(discrete=True, **kw):
    torch.manual_seed(1)
    td = random_sequences(batch=6, seq_len=5, n_agents=A, obs_dim=F, n_actions=N, state_dim=S, hidden_dim=H, **kw)
    if not discrete:
        td[keys.ACTION] = torch.rand(6, 6, A, 2) * 2 - 1
    return td


def test_dop_mixer_weights_are_nonnegative_and_q_tot_is_linear():
    torch.manual_seed(0)
    mixer = DOPMixer(A, S)
    state = torch.randn(500, S) * 10
    q = torch.randn(500, A, 1, requires_grad=True)
    k, b = mixer.weights(state)
    assert (k >= 0).all()
    grad = torch.autograd.grad(mixer(q, state).sum(), q)[0].squeeze(-1)
    torch.testing.assert_close(grad, k)  # dQ_tot/dQ_i == k_i(s)
    q2 = q.detach() * 3 - 1
    torch.testing.assert_close(mixer(q2, state), (k * q2.squeeze(-1)).sum(-1, keepdim=True) + b)


def test_twin_critics_have_separate_parameters_and_targets():
    loss = _loss()
    ptrs = lambda m: {p.data_ptr() for p in m.parameters()}  # noqa: E731
    assert not ptrs(loss.critics[0]) & ptrs(loss.critics[1])
    assert not ptrs(loss.mixers[0]) & ptrs(loss.mixers[1])
    assert not (ptrs(loss.critics) | ptrs(loss.mixers)) & (ptrs(loss.critics_target) | ptrs(loss.mixers_target))
    loss(_batch())["loss_qvalue"].backward()
    g0 = [p.grad for p in loss.critics[0].parameters()]
    g1 = [p.grad for p in loss.critics[1].parameters()]
    assert all(g is not None for g in g0 + g1) and any(not torch.equal(a, b) for a, b in zip(g0, g1))
    assert all(p.grad is None for p in loss.critics_target.parameters())


@pytest.mark.parametrize("peaked, direction", [(False, -1), (True, +1)])
def test_temperature_moves_toward_the_target_entropy(peaked, direction):
    """A uniform policy (entropy log 5 > target 0.5 log 5) lowers alpha; a near-deterministic one raises it."""
    loss = _loss(alpha_init=0.2)
    with torch.no_grad():
        loss.actor.head.weight.zero_()
        loss.actor.head.bias.copy_(torch.tensor([20.0, 0, 0, 0, 0]) if peaked else torch.zeros(N))
    opt = torch.optim.Adam([loss.log_alpha], lr=0.05)
    batch = _batch()
    for _ in range(30):
        opt.zero_grad()
        loss(batch)["loss_alpha"].backward()
        opt.step()
    assert (loss.log_alpha.exp().item() - 0.2) * direction > 0.05


def test_squashed_normal_log_prob_matches_monte_carlo():
    torch.manual_seed(0)
    bound = TanhBounded(torch.tensor([[-2.0]]), torch.tensor([[1.0]]))
    raw = torch.tensor([[0.3, math.log(0.8)]]).expand(400_000, 1, 2)
    a, log_p = squashed_normal_sample(raw, bound)
    a = a.flatten()
    edges = torch.linspace(-1.9, 0.9, 15)
    counts = torch.histc(a, bins=14, min=-1.9, max=0.9)
    empirical = counts / (len(a) * (edges[1] - edges[0]))
    # the model's density at bin centres, from the same function at the centres' pre-images
    centres = (edges[:-1] + edges[1:]) / 2
    u = torch.atanh((centres - bound.centre) / bound.half_range).reshape(-1, 1, 1)
    density = torch.exp(-0.5 * ((u - 0.3) / 0.8) ** 2) / (0.8 * math.sqrt(2 * math.pi))
    density = density / (bound.half_range * (1 - torch.tanh(u) ** 2))
    torch.testing.assert_close(empirical, density.flatten(), rtol=0.05, atol=0.005)
    # and log_prob is that density at the sampled points
    u_s = torch.atanh(((a - bound.centre.flatten()) / bound.half_range.flatten()).clamp(-1 + 1e-6, 1 - 1e-6))
    ref = -0.5 * ((u_s - 0.3) / 0.8) ** 2 - math.log(0.8 * math.sqrt(2 * math.pi)) - torch.log(1.5 * (1 - torch.tanh(u_s) ** 2))
    ok = a.abs() < 0.9  # away from the squashing edges, where atanh loses precision
    torch.testing.assert_close(log_p.flatten()[ok], ref[ok], rtol=1e-3, atol=1e-3)


def test_masked_actions_get_zero_probability_and_are_never_sampled():
    mask = torch.tensor([True, False, True, False, True]).expand(4000, A, N)
    logits = torch.randn(4000, A, N) * 3
    assert torch.all(masked_log_probs(logits, mask).exp()[~mask] == 0)
    td = TensorDict({keys.ACTOR_OUTPUT: logits, keys.ACTION_MASK: mask}, [4000])
    for mode in (ExplorationType.RANDOM, ExplorationType.DETERMINISTIC):
        with set_exploration_type(mode):
            actions = StochasticActionModule()(td.clone())[keys.ACTION]
        assert set(actions.unique().tolist()) <= {0, 2, 4}
    loss = _loss()
    out = loss(_batch(action_mask=True))
    assert torch.isfinite(out["loss_actor"]) and torch.isfinite(out["loss_qvalue"])


@pytest.mark.parametrize("discrete", [True, False])
def test_decomposed_actor_gradient_ignores_other_agents_actions(discrete, monkeypatch):
    """Agent 0's actor gradient is the same whatever agent 1's policy does (the DOP property)."""
    loss = _loss(discrete)
    batch = _batch(discrete)
    grads = []
    for shift in (0.0, 3.0):
        raw = torch.randn(6, 6, A, N if discrete else 4, generator=torch.Generator().manual_seed(2))
        raw[..., 1, :] += shift * torch.arange(raw.shape[-1])  # another policy for agent 1
        raw.requires_grad_(True)
        monkeypatch.setattr(loss.actor, "unroll", lambda obs, h0, raw=raw: (raw, None))
        torch.manual_seed(3)
        grads.append(torch.autograd.grad(loss(batch)["loss_actor"], raw)[0])
    torch.testing.assert_close(grads[0][..., 0, :], grads[1][..., 0, :])
    assert not torch.allclose(grads[0][..., 1, :], grads[1][..., 1, :])
    # and the actor term trains the actor alone
    loss2 = _loss(discrete)
    loss2(batch)["loss_actor"].backward()
    assert all(p.grad is None for p in list(loss2.critics.parameters()) + list(loss2.mixers.parameters()))


@pytest.mark.parametrize("overrides, message", [
    (["algorithm.alpha_init=-0.1"], "alpha_init must be > 0"),
    (["algorithm.critic_lr=0"], "lr must be > 0"),
    (["algorithm.mixer_options.hypernet_embed=0"], "hypernet_embed must be >= 1"),
    (["+algorithm.mixer=qmix"], "unknown option"),
])
def test_bad_config_is_a_clear_error(make_cfg, tmp_path, overrides, message):
    cfg = make_cfg(["algorithm=dop", "env=matrix/two_step", "total_frames=100"] + overrides)
    with pytest.raises(ConfigError, match=message):
        run(cfg, tmp_path)


@pytest.mark.parametrize("continuous", [False, True])
def test_recurrent_contract_actor_outputs_match_acting(continuous):
    parts, seqs = assert_actor_outputs_match_acting(build_dop, dict(name="dop", target_tau=0.01),
                                                    continuous=continuous, out_key=keys.ACTOR_OUTPUT)
    out = parts.loss(seqs)
    assert all(torch.isfinite(out[k]) for k in ("loss_actor", "loss_qvalue", "loss_alpha"))


def test_continuous_actions_without_bounds_are_an_error():
    info = EnvSpecInfo(A, F, S, 1, True, None, None, False, 10)
    with pytest.raises(ConfigError, match="finite bounds"):
        build_dop(dict(name="dop", target_tau=0.01), {}, info, "cpu", 100)


@pytest.mark.parametrize("continuous", ["false", "true"])
def test_tiny_vmas_run_and_evaluation(make_cfg, tmp_path, continuous):
    cfg = make_cfg(["algorithm=dop", f"env.continuous_actions={continuous}", "algorithm.critic_hidden_dim=16", *TINY_VMAS])
    metrics = run(cfg, tmp_path)
    for name in ("train/loss", "train/loss_actor", "train/loss_qvalue", "train/loss_alpha", "train/alpha",
                 "train/entropy", "eval/ep_reward"):
        assert name in metrics, name
    assert_checkpoint_evaluates_deterministically(tmp_path)  # evaluation takes the policy's mode


def test_dop_mixer_drops_into_value_decomposition(make_cfg, tmp_path):
    cfg = make_cfg(["algorithm=qmix", "algorithm.mixer=dop",
                    "env=matrix/two_step", "total_frames=256", "env.num_envs=32", "collector.frames_per_batch=64",
                    "replay.batch_size=8", "eval.episodes=4", "model.hidden_dim=16"])
    assert "eval/ep_reward" in run(cfg, tmp_path)
