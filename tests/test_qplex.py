"""QPLEX: IGM (the greedy joint action of Q_tot is the agents' own greedy actions, among available ones),
what it can represent (QTRAN's non-monotonic payoff), action masks in V_i, inside our value-decomposition
loss (through the mixer input bundle only) and inside torchrl's QMixerLoss."""
import itertools

import pytest
import torch
from tensordict.nn import TensorDictModule
from test_mixers import _fake_batch, _qmixer_loss
from test_value_decomposition_loss import FixedQ, _one_step_batch

from marl_torchrl.data.synthetic import random_sequences
from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.modules.mixers import QPLEXMixer, make_mixer
from marl_torchrl.objectives.value_decomposition import ValueDecompositionLoss
from marl_torchrl.registry import ConfigError

A, N, S = 3, 4, 5


def _q_tot_of_every_joint_action(mixer, q, state, mask):
    """Q_tot ``[J]`` of every joint action (rows of ``joints`` ``[J, A]``) for one state."""
    joints = torch.tensor(list(itertools.product(range(q.shape[-1]), repeat=q.shape[0])))  # [J, A]
    acts = joints.unsqueeze(-1)  # [J, A, 1]
    values = q.expand(len(joints), *q.shape)
    out = mixer(values.gather(-1, acts), state.expand(len(joints), -1), acts, values, mask.expand(len(joints), *mask.shape))
    return joints, out.squeeze(-1)


@pytest.mark.parametrize("seed", range(6))
def test_igm_greedy_joint_action_is_the_agents_greedy_actions(seed):
    torch.manual_seed(seed)
    mixer = QPLEXMixer(A, S, hypernet_embed=16, attention_heads=3)
    with torch.no_grad():  # larger weights: lambda varies strongly with the joint action
        for p in mixer.parameters():
            p.mul_(3.0)
    for _ in range(5):
        q, state = 4 * torch.randn(A, N), torch.randn(S)
        mask = torch.rand(A, N) > 0.4
        mask[torch.arange(A), torch.randint(N, (A,))] = True
        joints, q_tot = _q_tot_of_every_joint_action(mixer, q, state, mask)
        available = mask[torch.arange(A), joints].all(-1)  # [J]
        best = joints[q_tot.masked_fill(~available, float("-inf")).argmax()]
        greedy = q.masked_fill(~mask, float("-inf")).argmax(-1)
        assert torch.equal(best, greedy)
        lam = mixer.lambdas(state.expand(len(joints), -1), joints.unsqueeze(-1))
        assert (lam > 0).all() and lam.std() > 0  # positive, and depends on the joint action


def test_v_i_is_the_max_over_available_actions_only():
    torch.manual_seed(0)
    mixer = QPLEXMixer(A, S)
    q, state = torch.randn(6, A, N), torch.randn(6, S)
    mask = torch.ones(6, A, N, dtype=torch.bool)
    mask[..., 0] = False
    acts = torch.randint(1, N, (6, A, 1))
    base = mixer(q.gather(-1, acts), state, acts, q, mask)
    bigger = q.clone()
    bigger[..., 0] = 1e3  # an unavailable action's value must not set V_i
    torch.testing.assert_close(mixer(q.gather(-1, acts), state, acts, bigger, mask), base)
    assert not torch.allclose(mixer(q.gather(-1, acts), state, acts, bigger, None), base)
    none_available = torch.zeros_like(mask)  # padded steps may carry an all-false mask: stay finite
    assert torch.isfinite(mixer(q.gather(-1, acts), state, acts, q, none_available)).all()


def test_represents_qtran_non_monotonic_payoff_with_igm():
    """QPLEX's function class holds QTRAN's payoff [[8,-12,-12],[-12,0,0],[-12,0,0]] exactly, greedy at 8
    (QMIX's and VDN's do not): free per-agent values that start slightly preferring action 0, fitted on
    every joint action (constant state), reach it. From a tie at zero a fit can settle with the greedy
    joint action at a 0 instead (fit error 3.6); how often learning finds the 8 is
    benchmarks/qtran_counts.py's question."""
    torch.manual_seed(0)
    payoff = torch.tensor([[8.0, -12, -12], [-12, 0, 0], [-12, 0, 0]])
    # the function class does not depend on detach_advantage (same values, see below); the full gradient fits faster
    mixer = QPLEXMixer(2, 1, hypernet_embed=32, attention_heads=4, detach_advantage=False)
    q_table = torch.nn.Parameter(torch.tensor([[1.0, 0, 0], [1.0, 0, 0]]))
    opt = torch.optim.Adam([q_table, *mixer.parameters()], lr=1e-2)
    joints = torch.tensor(list(itertools.product(range(3), repeat=2)))
    acts, state = joints.unsqueeze(-1), torch.ones(9, 1)
    target = payoff[joints[:, 0], joints[:, 1]].unsqueeze(-1)
    for _ in range(1500):
        values = q_table.expand(9, 2, 3)
        loss = (mixer(values.gather(-1, acts), state, acts, values) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    greedy = q_table.argmax(-1)
    assert payoff[greedy[0], greedy[1]] == 8.0


def test_plugs_into_the_value_decomposition_loss():
    torch.manual_seed(0)
    net = SharedAgentNet(obs_dim=4, n_agents=A, out_dim=N, hidden_dim=8)
    loss = ValueDecompositionLoss(net, make_mixer("qplex", A, S, hypernet_embed=16), td_lambda=0.6, burn_in=1)
    td = random_sequences(batch=4, seq_len=5, n_agents=A, obs_dim=4, n_actions=N, state_dim=S, hidden_dim=8,
                          action_mask=True)
    td["is_init"][:2, 0] = False
    out = loss(td)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert all(p.grad is not None for p in loss.mixer.parameters())
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("double_q", [True, False])
def test_target_v_uses_available_next_actions_only(double_q):
    """One agent: the target is r + gamma * Q_tot(s', greedy available a'); an unavailable action's value
    (10 vs -10) changes nothing."""
    targets = []
    for first in (10.0, -10.0):
        td, q = _one_step_batch([first, 5.0, 1.0], [False, True, True])
        td["state"] = torch.zeros_like(td["state"])
        torch.manual_seed(0)
        loss = ValueDecompositionLoss(FixedQ(q), QPLEXMixer(1, 2), gamma=0.5, double_q=double_q)
        targets.append(loss(td)["target_value"].item())
    assert targets[0] == pytest.approx(targets[1])


def test_inside_torchrl_qmixer_loss_with_positional_inputs():
    """Given the actions and action values as extra in_keys, QPLEX runs in torchrl's own QMixerLoss."""
    torch.manual_seed(0)
    mixer = QPLEXMixer(state_shape=(7,), mixing_embed_dim=8, n_agents=A, device="cpu")
    in_keys = [("agents", "chosen_action_value"), "state", ("agents", "action"), ("agents", "action_value")]
    loss_module, _ = _qmixer_loss(mixer, in_keys=in_keys)
    out = loss_module(_fake_batch((8, 5)))["loss"]
    assert torch.isfinite(out)
    out.backward()
    assert all(p.grad is not None for p in mixer.parameters())


def test_bad_options_are_one_line_errors():
    with pytest.raises(ConfigError, match="attention_heads must be >= 1"):
        make_mixer("qplex", A, S, attention_heads=0)
    with pytest.raises(ConfigError, match="unknown option"):
        make_mixer("qplex", A, S, heads=2)
    with pytest.raises(ValueError, match="needs actions and action_values"):
        QPLEXMixer(A, S)(torch.zeros(2, A, 1), torch.zeros(2, S))
    with pytest.raises(ValueError, match="action indices"):
        QPLEXMixer(A, S, action_bits=1)(torch.zeros(2, A, 1), torch.zeros(2, S), torch.full((2, A, 1), 2), torch.zeros(2, A, 3))


@pytest.mark.parametrize("detach", [True, False])
def test_detached_advantages_keep_the_value_and_send_q_gradient_through_the_weighted_sum(detach):
    """The reference's ``is_minus_one`` form: same Q_tot; each Q_i's gradient is w_i(s), as in a weighted VDN."""
    torch.manual_seed(0)
    mixer = QPLEXMixer(n_agents=2, state_dim=4, detach_advantage=detach)
    q_all = torch.randn(6, 2, 3, requires_grad=True)
    state, actions = torch.randn(6, 4), torch.randint(3, (6, 2, 1))
    q_tot = mixer(q_all.gather(-1, actions), state, actions=actions, action_values=q_all)
    other = QPLEXMixer(n_agents=2, state_dim=4, detach_advantage=not detach)
    other.load_state_dict(mixer.state_dict())
    assert torch.allclose(q_tot, other(q_all.gather(-1, actions), state, actions=actions, action_values=q_all), atol=1e-6)
    grad = torch.autograd.grad(q_tot.sum(), q_all)[0]
    w = mixer.weights(state)[0]
    chosen = torch.zeros_like(q_all).scatter(-1, actions, 1.0)
    if detach:
        assert torch.allclose(grad, w.unsqueeze(-1) * chosen, atol=1e-6)
    else:
        assert not torch.allclose(grad, w.unsqueeze(-1) * chosen, atol=1e-6)
