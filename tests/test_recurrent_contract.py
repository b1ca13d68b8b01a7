"""The recurrent contract (DESIGN.md): for a sampled sequence and unchanged parameters, the Q-values the
loss computes at every step equal the ones the acting policy computed at that step; hidden states are
zero at episode start; stored start states continue an episode exactly."""
import pytest
import torch
from rollout_helpers import collect_balance
from torchrl.collectors import Collector

from marl_torchrl import keys
from marl_torchrl.algorithms.value_decomposition import build_value_decomposition
from marl_torchrl.data import SequenceBuilder
from marl_torchrl.envs import describe, make_env
from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.modules.recurrence import AgentNetModule
from marl_torchrl.registry import ConfigError

MAX_STEPS = 12


def _collect(seed=0, n_batches=3, num_envs=4, steps_per_batch=7, model="gru", input_layers=1):
    return collect_balance(
        build_value_decomposition,
        {"name": "qmix", "mixer": "qmix", "target_hard_interval": 10, "eps_start": 0.5, "eps_end": 0.5},
        {"type": model, "hidden_dim": 16, "input_layers": input_layers},
        seed=seed, num_envs=num_envs, max_steps=MAX_STEPS, steps=steps_per_batch, n_batches=n_batches,
    )


def _assert_unroll_equals_acting(parts, batches, seq_len=5):
    """The loss's online unroll gives, at every valid step, the Q-values the acting policy computed."""
    seqs = _sequences(batches, seq_len)
    with torch.no_grad():
        q_online = parts.loss._unroll_online(seqs[keys.OBS], seqs[keys.HIDDEN])
    valid = seqs[keys.MASK].squeeze(-1)
    torch.testing.assert_close(q_online[valid], seqs[keys.ACTION_VALUE][valid], atol=1e-5, rtol=1e-5)


def _sequences(batches, seq_len, rnn=True):
    builder = SequenceBuilder(seq_len, hidden_key=keys.HIDDEN if rnn else None, extra_keys=(keys.ACTION_VALUE,))
    out = [s for s in (builder.add(b) for b in batches) if s is not None]
    return torch.cat(out)


def test_hidden_state_is_zero_at_episode_start():
    _, batches = _collect()
    b = torch.cat(batches, dim=1)
    init = b["is_init"].squeeze(-1)
    assert init[:, 0].all() and init[:, MAX_STEPS].all()
    assert torch.all(b[keys.HIDDEN][init] == 0)
    # and it is not zero elsewhere: the state is really carried between steps
    assert (b[keys.HIDDEN][~init].abs().sum(dim=(-1, -2)) > 0).all()


def test_agent_module_resets_hidden_where_is_init():
    net = SharedAgentNet(obs_dim=3, n_agents=2, out_dim=4, hidden_dim=8)
    from tensordict import TensorDict

    obs = torch.randn(2, 2, 3)
    td = TensorDict({keys.OBS: obs, keys.HIDDEN: torch.randn(2, 2, 8),
                     "is_init": torch.tensor([[True], [False]])}, [2])
    out = AgentNetModule(net)(td)
    q_zero, _ = net(obs[:1], torch.zeros(1, 2, 8))
    torch.testing.assert_close(out[keys.ACTION_VALUE][:1], q_zero)
    q_carried, _ = net(obs[1:], td[keys.HIDDEN][1:])
    torch.testing.assert_close(out[keys.ACTION_VALUE][1:], q_carried)


@pytest.mark.parametrize("seq_len,burn_in", [(MAX_STEPS, 0), (5, 0), (5, 2)])
def test_loss_q_values_equal_acting_q_values(seq_len, burn_in):
    parts, batches = _collect()
    seqs = _sequences(batches, seq_len)
    assert seqs.shape[0] >= 4
    loss = parts.loss
    loss.burn_in = burn_in
    if seq_len < MAX_STEPS:  # some sequences continue an episode from a stored, non-zero state
        assert (~seqs["is_init"][:, 0, 0]).any()
        assert seqs[keys.HIDDEN][~seqs["is_init"][:, 0, 0]].abs().sum() > 0
    with torch.no_grad():
        q_online = loss._unroll_online(seqs[keys.OBS], seqs[keys.HIDDEN])
        q_target, _ = loss.agent_net_target.unroll(seqs[keys.OBS], seqs[keys.HIDDEN])
    valid = seqs[keys.MASK].squeeze(-1)
    acted = seqs[keys.ACTION_VALUE][valid]
    torch.testing.assert_close(q_online[valid], acted, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(q_target[valid], acted, atol=1e-5, rtol=1e-5)


def test_gru_without_input_layers_reads_the_observation_and_keeps_the_contract():
    """``model.input_layers=0``: GRU(obs + id -> H) -> head; acting steps and the loss's unroll agree."""
    parts, batches = _collect(input_layers=0)
    net = parts.loss.agent_net
    assert len(net.body) == 0 and net.gru.input_size == 16 + 3 and net.gru.hidden_size == 16
    _assert_unroll_equals_acting(parts, batches)
    with pytest.raises(ConfigError, match="is for GRU agents"):
        SharedAgentNet(obs_dim=3, n_agents=2, out_dim=4, rnn=False, input_layers=0)


def test_gru_with_two_input_layers_keeps_the_contract():
    """``model.input_layers=2`` (PQN's reference network): two [-> H] layers before the GRU."""
    parts, batches = _collect(input_layers=2)
    net = parts.loss.agent_net
    assert [type(m).__name__ for m in net.body] == ["Linear", "ReLU", "Linear", "ReLU"]
    assert net.body[2].in_features == net.body[2].out_features == net.gru.input_size == 16
    _assert_unroll_equals_acting(parts, batches)


def test_sequences_never_cross_episodes_and_keep_final_observation():
    _, batches = _collect(model="mlp")
    seqs = _sequences(batches, seq_len=MAX_STEPS, rnn=False)
    full = torch.cat(batches, dim=1)  # [E, T] in time order
    # every whole-episode sequence starts at an episode start
    assert seqs["is_init"][:, 0].all()
    # at a truncated end, the bootstrap slot holds the env's final observation, not the reset one
    lengths = seqs[keys.MASK].squeeze(-1).sum(1)
    final_obs = seqs[keys.OBS][torch.arange(len(seqs)), lengths]
    done_next_obs = full["next", *keys.OBS][full["next", "done"].squeeze(-1)]
    for o in final_obs[lengths == MAX_STEPS]:
        assert torch.isclose(done_next_obs, o).all(-1).all(-1).any()
    assert not seqs[keys.TERMINATED][lengths == MAX_STEPS].any()


def test_mlp_policy_q_values_match_loss():
    parts, batches = _collect(model="mlp")
    seqs = _sequences(batches, seq_len=5, rnn=False)
    with torch.no_grad():
        q, _ = parts.loss.agent_net.unroll(seqs[keys.OBS])
    valid = seqs[keys.MASK].squeeze(-1)
    torch.testing.assert_close(q[valid], seqs[keys.ACTION_VALUE][valid], atol=1e-6, rtol=1e-6)


def test_collector_acts_with_the_current_weights():
    """After an optimiser step, the next collected batch is acted by the updated network."""
    env = make_env({"family": "matrix", "task": "two_step"}, num_envs=4)
    parts = build_value_decomposition({"name": "qmix", "mixer": "qmix", "target_hard_interval": 10},
                                      {"type": "gru", "hidden_dim": 16}, describe(env), "cpu", total_frames=1000)
    for t in parts.env_transforms:
        env.append_transform(t)
    collector = Collector(env, parts.policy, frames_per_batch=8, total_frames=80, trust_policy=True)
    it = iter(collector)
    next(it)
    with torch.no_grad():
        for p in parts.loss.agent_net.parameters():
            p.add_(0.5)
    collector.update_policy_weights_()
    b = next(it)
    collector.shutdown()
    td = b.select(keys.OBS, keys.HIDDEN, "is_init").clone().reshape(-1)
    q_now = AgentNetModule(parts.loss.agent_net)(td)[keys.ACTION_VALUE].reshape(b[keys.ACTION_VALUE].shape)
    torch.testing.assert_close(b[keys.ACTION_VALUE], q_now, atol=1e-5, rtol=1e-5)
