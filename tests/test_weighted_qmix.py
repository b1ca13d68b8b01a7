"""Weighted QMIX (OW/CW) as options of the value-decomposition loss: weights, wiring, bad input,
gradients and targets, checkpoints, and the recurrent contract of the acting network."""
import pytest
import torch
from torchrl.collectors import Collector

from marl_torchrl import keys
from marl_torchrl.algorithms.value_decomposition import build_value_decomposition
from marl_torchrl.data.synthetic import random_sequences
from marl_torchrl.envs import EnvSpecInfo, describe, make_env
from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.modules.mixers import QMixer, make_mixer
from marl_torchrl.modules.mixers.feedforward import FeedForwardMixer
from marl_torchrl.objectives.value_decomposition import ValueDecompositionLoss
from marl_torchrl.objectives.weighted import CentralQ, wqmix_weights
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run

A, F, N, S, H = 2, 3, 4, 6, 8
INFO = EnvSpecInfo(n_agents=A, obs_dim=F, state_dim=S, n_actions=N, continuous=False, action_low=None,
                   action_high=None, has_action_mask=False, max_steps=10)


def _cfg(weighting="cw", **kw):
    return dict(name=f"{weighting}_qmix", mixer="qmix", weighting=weighting, alpha=0.1, central_mixer_embed=16,
                target_hard_interval=10, **kw)


def _parts(weighting="cw", model="gru", **kw):
    torch.manual_seed(0)
    return build_value_decomposition(_cfg(weighting, **kw), dict(type=model, hidden_dim=H), INFO, "cpu",
                                     total_frames=1000)


def _central():
    return CentralQ(SharedAgentNet(F, A, N, hidden_dim=H), FeedForwardMixer(A, S, mixing_embed_dim=16))


def _batch(seq_len=5, seed=0, batch=8):
    return random_sequences(batch=batch, seq_len=seq_len, n_agents=A, obs_dim=F, n_actions=N, state_dim=S,
                            hidden_dim=H, generator=torch.Generator().manual_seed(seed))


# -- 1. the weights ---------------------------------------------------------------------------------
def test_wqmix_weights_by_hand():
    #            0: Q<y      1: Q>y greedy   2: Q>y, y>Q*   3: Q>y, y<Q*   4: Q=y, y=Q*
    q_tot = torch.tensor([1.0, 5.0, 5.0, 5.0, 2.0]).view(1, 5, 1)
    y = torch.tensor([2.0, 2.0, 2.0, 2.0, 2.0]).view(1, 5, 1)
    is_greedy = torch.tensor([False, True, False, False, False]).view(1, 5, 1)
    q_star_greedy = torch.tensor([3.0, 3.0, 1.0, 3.0, 2.0]).view(1, 5, 1)
    a = 0.25
    ow = wqmix_weights("ow", q_tot, y, a)
    cw = wqmix_weights("cw", q_tot, y, a, is_greedy=is_greedy, central_greedy_value=q_star_greedy)
    assert ow.flatten().tolist() == [1.0, a, a, a, a]
    assert cw.flatten().tolist() == [a, 1.0, 1.0, a, a]
    assert ow.shape == cw.shape == q_tot.shape


def test_wqmix_weights_have_no_gradient_and_need_cw_inputs():
    q_tot = torch.randn(4, 3, 1, requires_grad=True)
    assert not wqmix_weights("ow", q_tot, torch.zeros(4, 3, 1), 0.1).requires_grad
    with pytest.raises(ValueError, match="is_greedy"):
        wqmix_weights("cw", q_tot, torch.zeros(4, 3, 1), 0.1)
    with pytest.raises(ConfigError, match="unknown weighting 'xw'"):
        wqmix_weights("xw", q_tot, torch.zeros(4, 3, 1), 0.1)


def _one_step_batch(loss, seed=0):
    """One-step episodes (target = reward): a third of the joint actions are QMIX's greedy ones, a
    third have only agent 0 greedy, a third are random."""
    td = _batch(seq_len=1, seed=seed, batch=48)
    td[keys.TERMINATED][:, 0] = True
    with torch.no_grad():
        greedy = loss.agent_net.unroll(td[keys.OBS], td[keys.HIDDEN])[0].argmax(-1)  # [B, 2, A]
    action = td[keys.ACTION]
    action[::3] = greedy[::3]
    action[1::3, :, 0] = greedy[1::3, :, 0]
    action[1::3, :, 1] = (greedy[1::3, :, 1] + 1) % N
    return td


@pytest.mark.parametrize("weighting", ["ow", "cw"])
def test_loss_weights_are_wired_to_the_right_tensors(weighting):
    parts = _parts(weighting)
    loss = parts.loss
    td = _one_step_batch(loss)
    out = loss(td)
    # recompute Q_tot(s, u), y = r, greedy actions and target Q*(s, greedy) by hand
    with torch.no_grad():
        obs, state, u = td[keys.OBS], td[keys.STATE][:, :1], td[keys.ACTION][:, :1].unsqueeze(-1)
        q = loss.agent_net.unroll(obs, td[keys.HIDDEN])[0][:, :1]
        q_tot = loss.mixer(q.gather(-1, u), state)
        y = td[keys.REWARD][:, :1]
        greedy = q.argmax(-1, keepdim=True)
        star = loss.central_target.joint_value(loss.central_target.unroll(obs)[:, :1], greedy, state)
        q_star = loss.central(obs, td[keys.ACTION].unsqueeze(-1), td[keys.STATE])[:, :1]
    is_greedy = (u == greedy).all(-2)
    assert is_greedy[::3].all() and not is_greedy[1::3].any()
    w = wqmix_weights(weighting, q_tot, y, 0.1, is_greedy=is_greedy, central_greedy_value=star)
    assert 0.1 < w.mean() < 1.0  # both kinds of transitions are present
    torch.testing.assert_close(out["weight_mean"], w.mean())
    torch.testing.assert_close(out["central_loss"], (q_star - y).pow(2).mean())
    torch.testing.assert_close(out["loss"], (w * (q_tot - y).pow(2)).mean() + (q_star - y).pow(2).mean())
    torch.testing.assert_close(out["target_value"], y.mean())


def test_next_values_come_from_the_target_central_q_at_qmix_greedy_actions():
    loss = _parts("ow", model="mlp").loss
    td = _batch(seq_len=1)
    td[keys.REWARD].zero_()
    with torch.no_grad():
        loss.central_target.mixer.net[-1].bias.add_(100.0)  # only the target Q* moves
        out = loss(td)
        obs, state = td[keys.OBS], td[keys.STATE]
        greedy = loss.agent_net.unroll(obs)[0].argmax(-1, keepdim=True)
        q_star_next = loss.central_target(obs, greedy, state)[:, 1]
    torch.testing.assert_close(out["target_value"], loss.gamma * q_star_next.mean())
    assert out["target_value"] > 50


def test_alpha_one_is_the_unweighted_loss_with_central_targets():
    torch.manual_seed(0)
    net, central, mixer = SharedAgentNet(F, A, N, hidden_dim=H), _central(), QMixer(A, S, mixing_embed_dim=8)
    td = _batch()
    plain = ValueDecompositionLoss(net, mixer, central=central, td_lambda=0.6)(td)
    for kind in ("ow", "cw"):
        out = ValueDecompositionLoss(net, mixer, central=central, weighting=kind, alpha=1.0, td_lambda=0.6)(td)
        torch.testing.assert_close(out["loss"], plain["loss"])
        assert out["weight_mean"].item() == 1.0


# -- 2. bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,words", [
    (dict(weighting="ow", alpha=0.0), ["alpha", "0.0"]),
    (dict(weighting="cw", alpha=1.5), ["alpha", "1.5"]),
    (dict(weighting="hysteretic"), ["unknown weighting", "hysteretic", "ow", "cw"]),
    (dict(weighting="ow", central=None), ["weighting 'ow'", "central"]),
    (dict(weighting="ow", mixer=None), ["mixer"]),
])
def test_bad_weighting_options_raise_config_error(kwargs, words):
    args = dict(central=_central(), mixer=QMixer(A, S, mixing_embed_dim=8))
    args.update(kwargs)
    mixer = args.pop("mixer")
    with pytest.raises(ConfigError) as err:
        ValueDecompositionLoss(SharedAgentNet(F, A, N, hidden_dim=H), mixer, **args)
    msg = str(err.value)
    assert "\n" not in msg
    for word in words:
        assert word in msg, msg


def test_bad_alpha_from_the_command_line_is_one_error_line(make_cfg, tmp_path):
    cfg = make_cfg(["algorithm=ow_qmix", "env=matrix/nonmonotonic", "algorithm.alpha=0", "total_frames=64",
                    "env.num_envs=4", "collector.frames_per_batch=8", "eval.interval_frames=0"])
    with pytest.raises(ConfigError) as err:
        run(cfg, tmp_path / "run")
    msg = str(err.value)
    assert "\n" not in msg and "alpha" in msg and "got 0" in msg, msg
    assert not (tmp_path / "run" / "models").exists()


def test_unknown_weighting_from_config_and_weighting_without_mixer(make_cfg):
    env = make_env(make_cfg(["env=matrix/nonmonotonic"]).env, num_envs=2)
    info = describe(env)
    with pytest.raises(ConfigError, match="unknown weighting 'optimistic'"):
        build_value_decomposition(dict(_cfg(), weighting="optimistic"), {}, info, "cpu", 100)
    with pytest.raises(ConfigError, match="needs a mixer"):
        build_value_decomposition(dict(_cfg(), mixer=None), {}, info, "cpu", 100)


# -- 3. gradients, targets, optimiser, checkpoints ---------------------------------------------------
@pytest.mark.parametrize("weighting", ["ow", "cw"])
def test_gradients_reach_online_nets_only(weighting):
    parts = _parts(weighting)
    loss = parts.loss
    out = loss(_batch())
    assert {"loss", "central_loss", "weight_mean", "td_error", "q_value"} <= set(out.keys())
    assert 0.1 - 1e-6 <= out["weight_mean"].item() <= 1.0
    out["loss"].backward()
    for name, module in [("agent_net", loss.agent_net), ("mixer", loss.mixer),
                         ("central.agent_net", loss.central.agent_net), ("central.mixer", loss.central.mixer)]:
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name
    for module in (loss.agent_net_target, loss.mixer_target, loss.central_target):
        assert all(p.grad is None and not p.requires_grad for p in module.parameters())
    # one optimiser over everything, and one target updater over every pair
    opt_params = {id(p) for g in parts.optimizers["loss"].param_groups for p in g["params"]}
    assert {id(p) for p in loss.central.parameters()} <= opt_params
    assert not {id(p) for p in loss.central_target.parameters()} & opt_params
    assert (loss.central, loss.central_target) in parts.target_updater.pairs


def test_central_loss_trains_central_params_alone():
    """Stepping Q*'s parameters alone on the total loss lowers central_loss (targets carry no gradient)."""
    loss = _parts("ow").loss
    td = _batch()
    opt = torch.optim.Adam(loss.central.parameters(), lr=1e-2)
    first = loss(td)["central_loss"].item()
    for _ in range(30):
        opt.zero_grad()
        loss(td)["loss"].backward()
        opt.step()
    assert loss(td)["central_loss"].item() < 0.5 * first


def test_target_update_copies_central_and_checkpoint_holds_it():
    parts = _parts("cw")
    loss = parts.loss
    with torch.no_grad():
        for p in loss.central.parameters():
            p.add_(1.0)
    for _ in range(10):
        parts.target_updater.step()
    for p, tp in zip(loss.central.parameters(), loss.central_target.parameters()):
        assert torch.equal(p, tp)
    state = loss.state_dict()
    for prefix in ("central.agent_net.", "central.mixer.", "central_target.agent_net.", "central_target.mixer."):
        assert any(k.startswith(prefix) for k in state), prefix
    fresh = _parts("cw").loss
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(_batch())["loss"], loss(_batch())["loss"])


def test_feedforward_mixer_is_registered_and_unrestricted():
    mixer = make_mixer("feedforward", A, S, mixing_embed_dim=16, hidden_layers=2)
    assert isinstance(mixer, FeedForwardMixer) and mixer.needs_state
    assert mixer(torch.randn(5, 7, A, 1), torch.randn(5, 7, S)).shape == (5, 7, 1)
    with pytest.raises(ConfigError, match="feedforward"):
        make_mixer("feedforward", A, S, embed_dim=16)


# -- 4. acting and the recurrent contract -----------------------------------------------------------
def test_policy_is_the_qmix_agent_net_alone():
    parts = _parts("ow")
    policy_params = {id(p) for p in parts.policy.parameters()}
    assert policy_params == {id(p) for p in parts.loss.agent_net.parameters()}


@pytest.mark.parametrize("seq_len,burn_in", [(12, 0), (5, 2)])
def test_loss_q_values_equal_acting_q_values(seq_len, burn_in):
    from test_recurrent_contract import MAX_STEPS, _sequences

    torch.manual_seed(0)
    env = make_env({"family": "vmas", "task": "balance", "max_steps": MAX_STEPS,
                    "scenario_kwargs": {"n_agents": 3}}, num_envs=4, seed=0)
    info = describe(env)
    parts = build_value_decomposition(dict(_cfg("ow"), eps_start=0.5, eps_end=0.5), {"type": "gru", "hidden_dim": 16},
                                      info, "cpu", total_frames=1000)
    for t in parts.env_transforms:
        env.append_transform(t)
    collector = Collector(env, parts.policy, frames_per_batch=28, total_frames=84, trust_policy=True)
    batches = [b.clone() for b in collector]
    collector.shutdown()
    seqs = _sequences(batches, seq_len)
    loss = parts.loss
    loss.burn_in = burn_in
    with torch.no_grad():
        q_online = loss._unroll_online(seqs[keys.OBS], seqs[keys.HIDDEN])
    valid = seqs[keys.MASK].squeeze(-1)
    torch.testing.assert_close(q_online[valid], seqs[keys.ACTION_VALUE][valid], atol=1e-5, rtol=1e-5)
    out = loss(seqs)  # and the weighted loss runs on real sequences (burn-in included)
    assert torch.isfinite(out["loss"]) and torch.isfinite(out["central_loss"])
