"""Burn-in, the loss side, for every sequence loss with a GRU net (the rule in
marl_torchrl/objectives/sequence_batch.py): the burn-in steps of a sequence that starts mid-episode
pass no gradient and leave the loss; an episode-start sequence keeps them; and the values the loss
unrolls after burn-in equal those the acting policy computed."""
import pytest
import torch
from rollout_helpers import collect_balance
from test_recurrent_contract import _collect, _sequences

from marl_torchrl import keys
from marl_torchrl.algorithms.dop import build_dop
from marl_torchrl.algorithms.facmac import build_facmac
from marl_torchrl.data import SequenceBuilder
from marl_torchrl.data.synthetic import random_sequences
from marl_torchrl.modules import DOPMixer, NonMonotonicMixer, QMixer, SharedAgentNet
from marl_torchrl.modules.critics import AgentActionCritic, HistoryCritic
from marl_torchrl.objectives.dop import DOPSACLoss
from marl_torchrl.objectives.facmac import FACMACLoss
from marl_torchrl.objectives.sequence_ops import unroll_with_burn_in
from marl_torchrl.objectives.value_decomposition import ValueDecompositionLoss

A, F, N, S, H, BURN = 2, 3, 4, 6, 8, 2


def _make(kind, burn_in):
    torch.manual_seed(0)
    if kind == "vd":
        return ValueDecompositionLoss(SharedAgentNet(F, A, N, hidden_dim=H), QMixer(A, S, 8), td_lambda=0.6, burn_in=burn_in)
    if kind == "facmac":
        return FACMACLoss(SharedAgentNet(F, A, N, hidden_dim=H), AgentActionCritic(F, N, A, discrete=True, hidden_dim=H),
                          NonMonotonicMixer(A, S, 8), n_actions=N, burn_in=burn_in)
    critics = [HistoryCritic(F, N, A, discrete=True, hidden_dim=H) for _ in range(2)]
    return DOPSACLoss(SharedAgentNet(F, A, N, hidden_dim=H), critics, [DOPMixer(A, S), DOPMixer(A, S)], n_actions=N,
                      td_lambda=0.6, burn_in=burn_in)


def _batch():
    """Sequence 0 starts an episode; 1 and 2 continue one from a stored, non-zero hidden state."""
    torch.manual_seed(1)
    td = random_sequences(batch=3, seq_len=6, n_agents=A, obs_dim=F, n_actions=N, state_dim=S, hidden_dim=H)
    td["is_init"][1:, 0] = False
    td[keys.HIDDEN][1:] = torch.randn(2, A, H)
    return td


def _losses(loss, td):
    torch.manual_seed(2)  # FACMAC samples Gumbel noise
    out = loss(td)
    return {k: v for k, v in out.items() if k.startswith("loss")}


KINDS = ["vd", "facmac", "dop"]


@pytest.mark.parametrize("kind", KINDS)
def test_burn_in_steps_pass_no_gradient(kind):
    """With burn-in, nothing before the burn-in boundary of a mid-episode sequence gets gradient: not the
    stored start state, not (value decomposition) the burn-in observations. Without burn-in both do."""
    for burn_in in (BURN, 0):
        loss, td = _make(kind, burn_in), _batch()
        h0 = td[keys.HIDDEN].clone().requires_grad_()
        obs = td[keys.OBS].clone().requires_grad_()
        td[keys.HIDDEN], td[keys.OBS] = h0, obs
        total = sum(_losses(loss, td).values())
        g_h0, g_obs = torch.autograd.grad(total, [h0, obs], allow_unused=True)
        if burn_in:
            assert g_h0 is None or g_h0[1:].abs().max() == 0
            if kind == "vd":
                assert g_obs[1:, :BURN].abs().max() == 0
                assert g_obs[0, :BURN].abs().max() > 0  # an episode start keeps its first steps
        else:
            assert g_h0[1:].abs().max() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_burn_in_steps_leave_the_loss_of_mid_episode_sequences_only(kind):
    loss, td = _make(kind, BURN), _batch()
    base = _losses(loss, td)
    changed = td.clone()
    changed[keys.REWARD][1:, :BURN] += 100.0  # rewards and terminations of burn-in steps: other targets
    changed[keys.TERMINATED][1:, :BURN] = True
    for k, v in _losses(loss, changed).items():
        torch.testing.assert_close(v, base[k], msg=k)
    start = td.clone()
    start[keys.REWARD][0, :BURN] += 100.0  # the episode-start sequence keeps those steps
    assert any(not torch.allclose(v, base[k]) for k, v in _losses(loss, start).items())


def test_value_decomposition_q_after_burn_in_equals_acting_q():
    parts, batches = _collect()
    seqs = _sequences(batches, 5)
    mid = ~seqs["is_init"][:, 0, 0]
    assert mid.any()
    parts.loss.burn_in = BURN
    with torch.no_grad():
        q = parts.loss._unroll_online(seqs[keys.OBS], seqs[keys.HIDDEN])
    valid = parts.loss.read_batch(seqs, parts.loss.agent_net).valid.squeeze(-1).bool()  # burn-in dropped
    assert not valid[mid, :BURN].any() and valid.any()
    acted = seqs[keys.ACTION_VALUE][:, :-1]
    torch.testing.assert_close(q[:, :-1][valid], acted[valid], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("build,cfg", [(build_facmac, dict(name="facmac", mixer="nonmonotonic", target_tau=0.01)),
                                       (build_dop, dict(name="dop", target_tau=0.01))], ids=["facmac", "dop"])
def test_actor_outputs_after_burn_in_equal_acting_outputs(build, cfg):
    """Discrete actions on VMAS balance, 5-step pieces of 12-step episodes from stored start states."""
    parts, batches = collect_balance(build, cfg, dict(type="gru", hidden_dim=16))
    out_key = keys.ACTION_VALUE if build is build_facmac else keys.ACTOR_OUTPUT
    builder = SequenceBuilder(5, hidden_key=keys.HIDDEN, extra_keys=(out_key,))
    seqs = torch.cat([s for s in (builder.add(b) for b in batches) if s is not None])
    loss = parts.loss
    loss.burn_in = BURN
    mid = ~seqs["is_init"][:, 0, 0]
    assert mid.any() and seqs[keys.HIDDEN][mid].abs().sum() > 0
    with torch.no_grad():
        raw = unroll_with_burn_in(loss.actor, seqs[keys.OBS], seqs[keys.HIDDEN], BURN)
    valid = loss.read_batch(seqs, loss.actor, action_mask=False).valid.squeeze(-1).bool()
    assert not valid[mid, :BURN].any()
    torch.testing.assert_close(raw[:, :-1][valid], seqs[out_key][:, :-1][valid], atol=1e-5, rtol=1e-5)
    assert all(torch.isfinite(v) for k, v in loss(seqs).items() if k.startswith("loss"))
