"""Targets of the sequence Q-learning loss: masks, double Q, truncation vs termination, TD(lambda)."""
import pytest
import torch
from torch import nn
from torchrl.modules.models.multiagent import QMixer as TorchRLQMixer
from torchrl.modules.models.multiagent import VDNMixer as TorchRLVDNMixer

from marl_torchrl import keys
from marl_torchrl.data.synthetic import random_sequences
from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.modules.mixers import QMixer
from marl_torchrl.objectives.targets import TargetUpdater, lambda_returns
from marl_torchrl.objectives.value_decomposition import ValueDecompositionLoss
from marl_torchrl.registry import ConfigError


class FixedQ(nn.Module):
    """An 'agent network' whose Q-values are given: q[b, t, a, n] (+ a parameter for the optimiser)."""

    rnn = True  # values belong to the steps of the whole sequence (not a per-step map): always unroll all

    def __init__(self, q):
        super().__init__()
        self.q = nn.Parameter(q.clone())

    def unroll(self, obs, h0=None):
        return self.q.expand(obs.shape[0], *self.q.shape[1:]), None


def _one_step_batch(q_next_row, mask_next_row, *, terminated=False, truncated_end=True):
    """One sequence of 1 transition: slot 0 (taken action 0, reward 1) and bootstrap slot 1."""
    n = len(q_next_row)
    td = random_sequences(batch=1, seq_len=1, n_agents=1, obs_dim=2, n_actions=n, state_dim=2)
    td[keys.ACTION] = torch.zeros(1, 2, 1, dtype=torch.long)
    td[keys.REWARD] = torch.ones(1, 2, 1)
    td[keys.TERMINATED] = torch.tensor([[[terminated], [False]]])
    td[keys.ACTION_MASK] = torch.stack([torch.ones(n, dtype=torch.bool), torch.tensor(mask_next_row)])[None, :, None]
    q = torch.stack([torch.zeros(n), torch.tensor(q_next_row)])[None, :, None]  # [1, 2, 1, n]
    return td, q


def test_target_argmax_respects_next_action_mask():
    td, q = _one_step_batch([10.0, 5.0, 1.0], [False, True, True])
    for double_q in (True, False):
        loss = ValueDecompositionLoss(FixedQ(q), None, gamma=0.5, double_q=double_q)
        out = loss(td)
        assert out["target_value"].item() == pytest.approx(1.0 + 0.5 * 5.0)  # 10 is masked out


def test_double_q_picks_with_online_scores_with_target():
    td, q = _one_step_batch([1.0, 2.0], [True, True])
    net = FixedQ(q)
    loss = ValueDecompositionLoss(net, None, gamma=1.0, double_q=True)
    with torch.no_grad():  # target net prefers action 0, online net action 1
        loss.agent_net_target.q[0, 1, 0] = torch.tensor([7.0, 3.0])
    assert loss(td)["target_value"].item() == pytest.approx(1.0 + 3.0)
    loss.double_q = False
    assert loss(td)["target_value"].item() == pytest.approx(1.0 + 7.0)


def test_terminated_does_not_bootstrap_truncated_does():
    td, q = _one_step_batch([4.0, 2.0], [True, True], terminated=True)
    loss = ValueDecompositionLoss(FixedQ(q), None, gamma=0.9)
    assert loss(td)["target_value"].item() == pytest.approx(1.0)
    td, q = _one_step_batch([4.0, 2.0], [True, True], terminated=False)  # truncated: slot 1 is the final obs
    loss = ValueDecompositionLoss(FixedQ(q), None, gamma=0.9)
    assert loss(td)["target_value"].item() == pytest.approx(1.0 + 0.9 * 4.0)


def _naive_lambda(r, term, valid, v, gamma, lam):
    b, length, x = v.shape
    out = torch.zeros_like(v)
    for i in range(b):
        for t in range(length):
            if not valid[i, t, 0]:
                continue
            # forward view: G^lambda = sum_n (1-lam) lam^(n-1) G^(n), truncated at the last valid step
            last = t
            while last + 1 < length and valid[i, last + 1, 0]:
                last += 1
            g_total, weight_left = torch.zeros(x), 1.0
            for n_ in range(1, last - t + 2):
                g_n, disc, alive = torch.zeros(x), 1.0, 1.0
                for k in range(t, t + n_):
                    g_n = g_n + alive * disc * r[i, k, 0]
                    disc *= gamma
                    alive *= 1.0 - float(term[i, k, 0])
                g_n = g_n + alive * disc * v[i, t + n_ - 1]
                w = weight_left if t + n_ - 1 == last else (1 - lam) * lam ** (n_ - 1)
                g_total += w * g_n
                weight_left -= (1 - lam) * lam ** (n_ - 1)
            out[i, t] = g_total
    return out


@pytest.mark.parametrize("lam", [0.0, 0.6, 1.0])
def test_lambda_returns_match_forward_view(lam):
    g = torch.Generator().manual_seed(0)
    b, length, x = 3, 6, 2
    r = torch.randn(b, length, 1, generator=g)
    v = torch.randn(b, length, x, generator=g)
    valid = torch.ones(b, length, 1)
    valid[1, 4:] = 0  # a short (padded) sequence
    term = torch.zeros(b, length, 1)
    term[2, 3] = 1.0  # an episode that terminates at step 3
    valid[2, 4:] = 0
    got = lambda_returns(r, term, valid, v, gamma=0.9, lam=lam)
    want = _naive_lambda(r, term, valid, v, 0.9, lam)
    torch.testing.assert_close(got * valid, want * valid, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mixer_kind", ["ours", "torchrl_qmix", "torchrl_vdn", None])
def test_loss_runs_with_any_mixer_and_masks(mixer_kind):
    n_agents, state_dim = 3, 6
    mixer = {
        "ours": lambda: QMixer(n_agents, state_dim, mixing_embed_dim=8, hypernet_layers=2),
        "torchrl_qmix": lambda: TorchRLQMixer((state_dim,), 8, n_agents, "cpu"),
        "torchrl_vdn": lambda: TorchRLVDNMixer(n_agents, "cpu"),
        None: lambda: None,
    }[mixer_kind]()
    net = SharedAgentNet(obs_dim=4, n_agents=n_agents, out_dim=5, hidden_dim=8)
    loss = ValueDecompositionLoss(net, mixer, td_lambda=0.6, burn_in=2)
    td = random_sequences(batch=4, seq_len=6, n_agents=n_agents, obs_dim=4, n_actions=5,
                          state_dim=state_dim, hidden_dim=8, action_mask=True)
    td["is_init"][:2, 0] = False  # two sequences continue an episode: burn-in applies to them
    out = loss(td)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert all(p.grad is not None for p in net.parameters())
    assert all(p.grad is None for p in loss.agent_net_target.parameters())


def test_set_keys_renames_what_the_loss_reads():
    net = SharedAgentNet(obs_dim=4, n_agents=2, out_dim=3, hidden_dim=8)
    loss = ValueDecompositionLoss(net, QMixer(2, 6, mixing_embed_dim=4))
    td = random_sequences(batch=2, seq_len=3, n_agents=2, obs_dim=4, n_actions=3, state_dim=6, hidden_dim=8)
    td.rename_key_("state", "global_state")
    with pytest.raises(KeyError):
        loss(td)
    loss.set_keys(state="global_state")
    assert torch.isfinite(loss(td)["loss"])


def test_padding_steps_do_not_change_the_loss():
    net = SharedAgentNet(obs_dim=4, n_agents=2, out_dim=3, rnn=False)
    loss = ValueDecompositionLoss(net, QMixer(2, 6, mixing_embed_dim=4))
    td = random_sequences(batch=2, seq_len=5, n_agents=2, obs_dim=4, n_actions=3, state_dim=6)
    td[keys.MASK][:, 3:] = False
    base = loss(td)["loss"]
    td[keys.REWARD][:, 3:] = 1e6  # garbage in padding must not matter
    td[keys.OBS][:, 4:] = 1e3
    torch.testing.assert_close(loss(td)["loss"], base)


def test_bad_loss_config_is_a_clear_error():
    net = SharedAgentNet(obs_dim=4, n_agents=2, out_dim=3)
    for kwargs in ({"gamma": 0.0}, {"td_lambda": 1.5}, {"loss_function": "l3"}):
        with pytest.raises(ConfigError):
            ValueDecompositionLoss(net, None, **kwargs)
    with pytest.raises(ConfigError):
        TargetUpdater([(net, net)], hard_interval=10, tau=0.1)
    with pytest.raises(ConfigError):
        TargetUpdater([(net, net)])


def test_polyak_update_moves_target_by_tau():
    online, target = nn.Linear(2, 2), nn.Linear(2, 2)
    before = target.weight.detach().clone()
    TargetUpdater([(online, target)], tau=0.25).step()
    torch.testing.assert_close(target.weight, 0.75 * before + 0.25 * online.weight.detach())


@pytest.mark.parametrize("double_q", [True, False])
@pytest.mark.parametrize("mixer_kind", ["qmix", None])
@pytest.mark.parametrize("rnn", [False, True])
def test_skipping_unread_steps_gives_the_same_loss_and_gradients(double_q, mixer_kind, rnn):
    """The loss skips the steps nobody reads (the online net's last step without double Q; an MLP target
    net's first step): loss, diagnostics and gradients equal those of the full unroll."""
    torch.manual_seed(0)
    td = random_sequences(batch=5, seq_len=3, n_agents=2, obs_dim=4, n_actions=3, state_dim=6,
                          hidden_dim=64 if rnn else None)
    results = []
    for skip in (True, False):
        torch.manual_seed(1)
        net = SharedAgentNet(obs_dim=4, n_agents=2, out_dim=3, rnn=rnn)
        mixer = QMixer(n_agents=2, state_dim=6) if mixer_kind else None
        loss = ValueDecompositionLoss(net, mixer, double_q=double_q, td_lambda=0.6)
        with torch.no_grad():  # make the target differ from the online net
            for p in loss.agent_net_target.parameters():
                p.add_(0.1 * torch.randn_like(p))
        loss.skip_unread_steps = skip
        out = loss(td)
        out["loss"].backward()
        results.append((out, [p.grad.clone() for p in net.parameters()]))
    (a, ga), (b, gb) = results
    for k in a.keys():
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-6)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-6)
