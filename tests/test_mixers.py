"""Mixers: shapes, monotonicity, VDN sum, shape errors, use inside torchrl's QMixerLoss, torchrl's
constructor keywords, and the package importing every mixer module by itself."""
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.modules import QValueModule, SafeSequential
from torchrl.modules.models.multiagent import Mixer, MultiAgentMLP
from torchrl.modules.models.multiagent import QMixer as TorchRLQMixer
from torchrl.objectives.multiagent import QMixerLoss

from marl_torchrl.modules.mixers import (
    DOPMixer, FeedForwardMixer, NonMonotonicMixer, QMixer, QPLEXMixer, VDNMixer, make_mixer,
)
from marl_torchrl.registry import MIXERS, ConfigError

A, S = 3, 7
MIXER_CASES = [
    ("vdn", {}),
    ("qmix", {"hypernet_layers": 1, "mixing_embed_dim": 8}),
    ("qmix", {"hypernet_layers": 2, "mixing_embed_dim": 8, "hypernet_embed": 16}),
    ("nonmonotonic", {"mixing_embed_dim": 8, "hypernet_embed": 16}),
    ("nonmonotonic", {"hypernet_layers": 1, "mixing_embed_dim": 8, "init_scale": 0.001}),
    ("feedforward", {"mixing_embed_dim": 16}),
    ("dop", {"hypernet_embed": 16}),
]
CASE_IDS = ["vdn", "qmix-1", "qmix-2", "nonmono-2", "nonmono-1-small-init", "feedforward", "dop"]


def _call(mixer, q, state):
    return mixer(q, state) if mixer.needs_state else mixer(q)


def test_registry_has_both_and_all_are_mixers():
    assert "vdn" in MIXERS and "qmix" in MIXERS
    for name, opts in MIXER_CASES:
        assert isinstance(make_mixer(name, A, S, **opts), Mixer)
    assert MIXERS.get("vdn") is not None and isinstance(make_mixer("vdn", A, S), VDNMixer)
    assert isinstance(make_mixer("qmix", A, S), QMixer)


@pytest.mark.parametrize("batch", [(5,), (4, 6), (2, 3, 4)])
@pytest.mark.parametrize("name,opts", MIXER_CASES, ids=CASE_IDS)
def test_output_shape(name, opts, batch):
    mixer = make_mixer(name, A, S, **opts)
    out = _call(mixer, torch.randn(*batch, A, 1), torch.randn(*batch, S))
    assert out.shape == (*batch, 1)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("layers", [1, 2])
def test_qmix_monotonic_in_every_agent_value(layers):
    for seed in range(5):
        torch.manual_seed(seed)
        mixer = QMixer(A, S, mixing_embed_dim=16, hypernet_layers=layers, hypernet_embed=32)
        q = (5 * torch.randn(512, A, 1)).requires_grad_()
        state = 3 * torch.randn(512, S)
        (grad,) = torch.autograd.grad(mixer(q, state).sum(), q)
        assert (grad >= 0).all(), f"negative dQ_tot/dQ_i: min {grad.min().item()}"
        assert (grad > 0).float().mean() > 0.5  # mostly strictly increasing, not a constant mixer
        # and along a line: increasing one agent's value never lowers Q_tot
        base = torch.randn(64, A, 1)
        s = torch.randn(64, S)
        prev = mixer(base, s)
        for step in range(1, 6):
            bumped = base.clone()
            bumped[:, step % A] += step
            cur = mixer(bumped, s)
            assert (cur >= prev - 1e-5).all()


@pytest.mark.parametrize("layers", [1, 2])
def test_nonmonotonic_mixer_can_decrease_in_an_agent_value(layers):
    torch.manual_seed(0)
    mixer = make_mixer("nonmonotonic", A, S, hypernet_layers=layers, mixing_embed_dim=8)
    q = torch.randn(256, A, 1, requires_grad=True)
    grad = torch.autograd.grad(mixer(q, torch.randn(256, S)).sum(), q)[0]
    assert (grad < 0).any() and (grad > 0).any()  # dQ_tot/dQ_i < 0 somewhere: not monotonic


@pytest.mark.parametrize("name", ["qmix", "nonmonotonic"])
def test_init_scale_shrinks_the_initial_output(name):
    torch.manual_seed(0)
    q, state = torch.randn(64, A, 1), torch.randn(64, S)
    big = make_mixer(name, A, S)(q, state).abs().mean()
    torch.manual_seed(0)
    small = make_mixer(name, A, S, init_scale=0.001)(q, state).abs().mean()
    assert small < 0.01 * big


def _gain(mixer, state):
    """``sum_i dQ_tot/dq_i`` per state row: how much the mixer amplifies the agents' values."""
    q = torch.zeros(state.shape[0], A, 1, requires_grad=True)
    return torch.autograd.grad(mixer(q, state).sum(), q)[0].sum((-2, -1))


@pytest.mark.parametrize("name", ["qmix", "nonmonotonic"])
def test_state_norm_keeps_far_states_from_scaling_the_mixing_weights(name):
    """On raw states the hypernetworks are piecewise linear, so a state 20x as far (agents that wandered
    off) gives mixing weights about 20x as large; with ``state_norm`` the weights stay those of the near state."""
    torch.manual_seed(0)
    near = torch.randn(128, S)
    raw, normed = make_mixer(name, A, S), make_mixer(name, A, S, state_norm=True)
    assert isinstance(normed.state_norm, nn.LayerNorm) and raw.state_norm is None
    assert (_gain(raw, 20 * near).abs().mean() > 5 * _gain(raw, near).abs().mean())
    assert torch.allclose(_gain(normed, 20 * near), _gain(normed, near), rtol=1e-3, atol=1e-4)
    loss = normed(torch.randn(128, A, 1), near).pow(2).mean()
    loss.backward()
    assert normed.state_norm.weight.grad.abs().sum() > 0  # its affine parameters train with the mixer


def test_qmix_two_layer_hypernets_structure():
    mixer = QMixer(A, S, mixing_embed_dim=8, hypernet_layers=2, hypernet_embed=16)
    for net, out in [(mixer.hyper_w_1, A * 8), (mixer.hyper_w_final, 8)]:
        assert [type(m) for m in net] == [nn.Linear, nn.ReLU, nn.Linear]
        assert net[0].out_features == 16 and net[2].out_features == out
    one = QMixer(A, S, mixing_embed_dim=8, hypernet_layers=1)
    assert isinstance(one.hyper_w_1, nn.Linear) and one.hyper_w_1.out_features == A * 8


def test_qmix_one_layer_matches_torchrl_qmixer():
    ours = QMixer(A, S, mixing_embed_dim=8, hypernet_layers=1)
    theirs = TorchRLQMixer(state_shape=(S,), mixing_embed_dim=8, n_agents=A, device="cpu")
    theirs.load_state_dict(ours.state_dict())
    q, state = torch.randn(4, 5, A, 1), torch.randn(4, 5, S)
    torch.testing.assert_close(ours(q, state), theirs(q, state))


def test_vdn_is_the_sum():
    q = torch.randn(4, 6, A, 1)
    torch.testing.assert_close(make_mixer("vdn", A, S)(q), q.sum(-2))


def test_bad_options_and_hypernet_layers_raise_config_error():
    with pytest.raises(ConfigError, match="hypernet_layers"):
        make_mixer("qmix", A, S, hypernet_layers=3)
    with pytest.raises(ConfigError, match="bogus"):
        make_mixer("qmix", A, S, bogus=1)
    with pytest.raises(ConfigError, match="mixing_embed_dim"):
        make_mixer("vdn", A, S, mixing_embed_dim=8)
    with pytest.raises(ConfigError, match="known:"):
        make_mixer("nope", A, S)


@pytest.mark.parametrize("name,opts", MIXER_CASES, ids=CASE_IDS)
def test_shape_errors(name, opts):
    mixer = make_mixer(name, A, S, **opts)
    with pytest.raises(ValueError, match="chosen_action_value"):
        _call(mixer, torch.randn(5, A + 1, 1), torch.randn(5, S))
    if mixer.needs_state:
        with pytest.raises(ValueError, match="state"):
            mixer(torch.randn(5, A, 1), torch.randn(5, S + 1))
        with pytest.raises(ValueError, match="batch dims"):
            mixer(torch.randn(5, A, 1), torch.randn(4, S))
    else:
        with pytest.raises(ValueError):
            mixer(torch.randn(5, A, 1), torch.randn(5, S))


@pytest.mark.parametrize("layers", [1, 2])
def test_qmix_non_contiguous_state(layers):
    mixer = QMixer(A, S, mixing_embed_dim=8, hypernet_layers=layers, hypernet_embed=16)
    state_tb = torch.randn(6, 4, S)
    state = state_tb.transpose(0, 1)  # [4, 6, S], non-contiguous
    q = torch.randn(6, 4, A, 1).transpose(0, 1)
    assert not state.is_contiguous() and not q.is_contiguous()
    out = mixer(q, state)
    torch.testing.assert_close(out, mixer(q.contiguous(), state.contiguous()))
    assert out.shape == (4, 6, 1)


def _qmixer_loss(mixer, obs_dim=5, n_actions=4, in_keys=None):
    net = MultiAgentMLP(
        n_agent_inputs=obs_dim, n_agent_outputs=n_actions, n_agents=A,
        centralized=False, share_params=True, depth=2, num_cells=32, activation_class=nn.Tanh,
    )
    qnet = SafeSequential(
        TensorDictModule(net, in_keys=[("agents", "observation")], out_keys=[("agents", "action_value")]),
        QValueModule(
            action_value_key=("agents", "action_value"),
            out_keys=[("agents", "action"), ("agents", "action_value"), ("agents", "chosen_action_value")],
            action_space="categorical",
        ),
    )
    if in_keys is None:
        in_keys = [("agents", "chosen_action_value")] + (["state"] if mixer.needs_state else [])
    mixer_module = TensorDictModule(mixer, in_keys=in_keys, out_keys=["chosen_action_value"])
    loss = QMixerLoss(qnet, mixer_module, action_space="categorical", delay_value=True)
    loss.make_value_estimator(gamma=0.99)
    return loss, net


def _fake_batch(batch, obs_dim=5, n_actions=4):
    def agents():
        return TensorDict({"observation": torch.randn(*batch, A, obs_dim)}, [*batch, A])

    return TensorDict(
        {
            "agents": TensorDict(
                {"observation": torch.randn(*batch, A, obs_dim),
                 "action": torch.randint(n_actions, (*batch, A))},
                [*batch, A],
            ),
            "state": torch.randn(*batch, S),
            "next": TensorDict(
                {
                    "agents": agents(),
                    "state": torch.randn(*batch, S),
                    "reward": torch.randn(*batch, 1),
                    "done": torch.rand(*batch, 1) < 0.2,
                    "terminated": torch.rand(*batch, 1) < 0.1,
                },
                batch,
            ),
        },
        batch,
    )


@pytest.mark.parametrize("batch", [(32,), (8, 5)])
@pytest.mark.parametrize("name,opts", MIXER_CASES, ids=CASE_IDS)
def test_inside_torchrl_qmixer_loss(name, opts, batch):
    torch.manual_seed(0)
    mixer = make_mixer(name, A, S, **opts)
    loss_module, local_net = _qmixer_loss(mixer)
    td = _fake_batch(batch)
    loss = loss_module(td)["loss"]
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    assert td["td_error"].shape == (*batch, 1)
    mixer_params = list(mixer.parameters())  # the loss shares these very tensors
    assert {id(p) for p in mixer_params} == {id(p) for p in loss_module.mixer_network_params.values(True, True)}
    if name == "vdn":
        assert mixer_params == []
    for p in mixer_params + list(loss_module.local_value_network_params.values(True, True)):
        assert p.grad is not None
        assert torch.isfinite(p.grad).all()
        assert p.grad.abs().sum() > 0


OUR_STATE_MIXERS = [QMixer, NonMonotonicMixer, FeedForwardMixer, DOPMixer, QPLEXMixer]


@pytest.mark.parametrize("cls", OUR_STATE_MIXERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("shape", [(S,), S, torch.Size([S])], ids=["tuple", "int", "size"])
def test_torchrl_constructor_keywords_build_our_mixers(cls, shape):
    """``torchrl.modules.QMixer(state_shape=..., mixing_embed_dim=..., n_agents=..., device=...)`` works
    with any of our mixers by changing the import."""
    mixer = cls(state_shape=shape, mixing_embed_dim=8, n_agents=A, device="cpu")
    assert mixer.state_shape == torch.Size([S]) and mixer.n_agents == A
    with pytest.raises(ConfigError, match="state_dim=4 but state_shape=\\(7,\\)"):
        cls(n_agents=A, state_dim=4, state_shape=shape)
    with pytest.raises(ConfigError, match="flat state only"):
        cls(state_shape=(2, S), n_agents=A)
    with pytest.raises(ConfigError, match="needs state_dim"):
        cls(n_agents=A)
    assert cls(A, S, state_shape=shape).state_shape == torch.Size([S])  # consistent: fine


def test_qmix_with_torchrl_keywords_matches_torchrl_and_drops_into_its_loss():
    ours = QMixer(state_shape=(S,), mixing_embed_dim=8, n_agents=A, device="cpu", hypernet_layers=1)
    theirs = TorchRLQMixer(state_shape=(S,), mixing_embed_dim=8, n_agents=A, device="cpu")
    theirs.load_state_dict(ours.state_dict())
    q, state = torch.randn(4, 5, A, 1), torch.randn(4, 5, S)
    torch.testing.assert_close(ours(q, state), theirs(q, state))
    loss_module, _ = _qmixer_loss(QMixer(state_shape=(S,), mixing_embed_dim=32, n_agents=A, device="cpu"))
    loss = loss_module(_fake_batch((8, 5)))["loss"]
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in loss_module.mixer_network_params.values(True, True))


def test_dop_mixer_takes_mixing_embed_dim_as_its_width():
    assert DOPMixer(A, S, mixing_embed_dim=16).hypernet_embed == 16
    with pytest.raises(ConfigError, match="give one of them"):
        DOPMixer(A, S, hypernet_embed=8, mixing_embed_dim=16)


def test_every_module_of_the_package_is_imported_and_registered():
    import pkgutil

    import marl_torchrl.modules.mixers as package

    modules = {m.name for m in pkgutil.iter_modules(package.__path__)}
    assert {"qmix", "qplex", "dop", "vdn", "nonmonotonic", "feedforward"} <= modules
    assert {"qmix", "qplex", "dop", "vdn", "nonmonotonic", "feedforward"} <= set(MIXERS.names())
    assert {"QMixer", "QPLEXMixer", "DOPMixer", "VDNMixer", "NonMonotonicMixer", "FeedForwardMixer", "make_mixer"} \
        <= set(package.__all__)
