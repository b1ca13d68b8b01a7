"""The sequence-loss skeleton: one batch reader with one burn-in rule, target pairs from declared names,
and the mixer input bundle (a mixer gets exactly the extra inputs it declares; a loss that cannot give
one refuses the mixer at construction)."""
import pytest
import torch
from torchrl.modules.models.multiagent import VDNMixer

from marl_torchrl.data.synthetic import random_sequences
from marl_torchrl.modules import DOPMixer, SharedAgentNet
from marl_torchrl.modules.actors import TanhBounded
from marl_torchrl.modules.critics import AgentActionCritic, HistoryCritic
from marl_torchrl.modules.mixers.base import MIXER_INPUTS, StateMixer
from marl_torchrl.objectives.dop import DOPSACLoss
from marl_torchrl.objectives.facmac import FACMACLoss
from marl_torchrl.objectives.sequence_batch import SequenceKeys, read_sequence_batch
from marl_torchrl.objectives.sequence_ops import mix_values
from marl_torchrl.objectives.value_decomposition import ValueDecompositionLoss
from marl_torchrl.registry import ConfigError

A, F, N, S, H = 2, 3, 4, 6, 8


class Recorder(StateMixer):
    """Sums the values and records the keyword inputs it was given."""

    def __init__(self, wants=(), n_agents=A):
        super().__init__(n_agents=n_agents, needs_state=True, state_shape=torch.Size([S]), device="cpu")
        self.extra_inputs, self.seen = tuple(wants), []

    def forward(self, q, state, **extras):
        self.seen.append(extras)
        return super().forward(q, state)

    def mix(self, q, state):
        return q.sum(-2)


def _batch():
    torch.manual_seed(0)
    td = random_sequences(batch=3, seq_len=4, n_agents=A, obs_dim=F, n_actions=N, state_dim=S, hidden_dim=H,
                          action_mask=True)
    td["is_init"][1:, 0] = False
    return td


@pytest.mark.parametrize("rnn", [True, False])
def test_one_burn_in_rule_recurrent_nets_only(rnn):
    batch = read_sequence_batch(_batch(), SequenceKeys(), SharedAgentNet(F, A, N, hidden_dim=H, rnn=rnn), burn_in=2)
    expected = torch.ones(3, 4)
    if rnn:  # mid-episode sequences lose their first two steps
        expected[1:, :2] = 0
    torch.testing.assert_close(batch.valid.squeeze(-1), expected)
    assert (batch.h0 is not None) == rnn and batch.recurrent == rnn
    assert batch.avail_next.shape == (3, 4, A, N) and batch.state_now.shape == (3, 4, S)


def test_target_pairs_come_from_declared_names():
    net = SharedAgentNet(F, A, N, hidden_dim=H)
    assert [o for o, _ in ValueDecompositionLoss(net, None).target_pairs()] == [net]
    mixer = VDNMixer(A, device="cpu")
    loss = ValueDecompositionLoss(net, mixer)
    assert [o for o, _ in loss.target_pairs()] == [net, mixer]
    assert all(not p.requires_grad for _, t in loss.target_pairs() for p in t.parameters())
    critics = [HistoryCritic(F, N, A, discrete=True, hidden_dim=H) for _ in range(2)]
    dop = DOPSACLoss(net, critics, [DOPMixer(A, S), DOPMixer(A, S)], n_actions=N)
    assert [o for o, _ in dop.target_pairs()] == [dop.critics, dop.mixers]


def test_mix_values_passes_exactly_the_requested_inputs():
    mixer = Recorder(wants=("actions", "action_mask"))
    given = {name: torch.zeros(1) for name in MIXER_INPUTS}
    mix_values(mixer, torch.ones(2, A, 1), torch.zeros(2, S), **given)
    assert sorted(mixer.seen[-1]) == ["action_mask", "actions"]
    plain = Recorder()
    mix_values(plain, torch.ones(2, A, 1), torch.zeros(2, S), **given)
    assert plain.seen[-1] == {}


def test_value_decomposition_gives_every_input_with_matching_shapes():
    mixer = Recorder(wants=MIXER_INPUTS)
    loss = ValueDecompositionLoss(SharedAgentNet(F, A, N, hidden_dim=H), mixer)
    loss(_batch())
    online, target = mixer.seen[0], loss.mixer_target  # the target is a copy: it records separately
    assert online["actions"].shape == (3, 4, A, 1) and online["action_values"].shape == (3, 4, A, N)
    assert online["action_mask"].shape == (3, 4, A, N) and online["observations"].shape == (3, 4, A, F)
    assert sorted(target.seen[0]) == sorted(MIXER_INPUTS)


def test_a_loss_refuses_a_mixer_input_it_cannot_give():
    actor, critic = SharedAgentNet(F, A, 2, hidden_dim=H), AgentActionCritic(F, 2, A, hidden_dim=H)
    bound = TanhBounded(-torch.ones(A, 2), torch.ones(A, 2))
    with pytest.raises(ConfigError, match="FACMAC cannot give mixer Recorder its 'action_values' input"):
        FACMACLoss(actor, critic, Recorder(wants=("action_values",)), bound=bound)
    with pytest.raises(ConfigError, match="'actions'"):  # continuous actions have no indices
        FACMACLoss(actor, critic, Recorder(wants=("actions",)), bound=bound)
    critics = [HistoryCritic(F, N, A, discrete=True, hidden_dim=H) for _ in range(2)]
    with pytest.raises(ConfigError, match="DOP cannot give mixer Recorder its 'actions' input"):
        DOPSACLoss(SharedAgentNet(F, A, N), critics, [Recorder(("actions",)), Recorder(("actions",))], n_actions=N)
    with pytest.raises(ConfigError, match="unknown input"):
        ValueDecompositionLoss(SharedAgentNet(F, A, N), Recorder(wants=("rewards",)))


def test_facmac_discrete_gives_action_indices_of_its_one_hot_actions():
    mixer = Recorder(wants=("actions", "observations"))
    loss = FACMACLoss(SharedAgentNet(F, A, N, hidden_dim=H), AgentActionCritic(F, N, A, discrete=True, hidden_dim=H),
                      mixer, n_actions=N)
    td = _batch()
    loss(td)
    torch.testing.assert_close(mixer.seen[0]["actions"].squeeze(-1), td["agents", "action"][:, :-1])
