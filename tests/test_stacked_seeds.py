"""K seeds stacked in one computation (marl_torchrl.seeds): each seed follows its own single run."""
import copy

import pytest
import torch

from marl_torchrl import keys
from marl_torchrl.algorithms.value_decomposition import build_value_decomposition
from marl_torchrl.config import ModelConfig, ValueDecompositionConfig, WeightedQMIXConfig
from marl_torchrl.data.synthetic import random_sequences
from marl_torchrl.envs import EnvSpecInfo
from marl_torchrl.modules import gru_kernel
from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.modules.mixers import QMixer, make_mixer
from marl_torchrl.objectives.value_decomposition import ValueDecompositionLoss
from marl_torchrl.registry import ConfigError
from marl_torchrl.seeds import StackedLearners, StackedValueDecompositionLoss, clip_per_seed
from marl_torchrl.seeds.gru import stacked_gru
from marl_torchrl.update import gradient_step

A, F, S, N, H = 3, 5, 7, 4, 16
INFO = EnvSpecInfo(n_agents=A, obs_dim=F, state_dim=S, n_actions=N, continuous=False, action_low=None,
                   action_high=None, has_action_mask=True, max_steps=20)
CFG = ValueDecompositionConfig(name="qmix", mixer="qmix", target_hard_interval=2, grad_clip=50.0)
MODEL = ModelConfig(hidden_dim=H)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def batch(seed, *, b=4, seq_len=6, reward_scale=1.0, mid_episode=False):
    td = random_sequences(batch=b, seq_len=seq_len, n_agents=A, obs_dim=F, n_actions=N, state_dim=S, hidden_dim=H,
                          action_mask=True, generator=torch.Generator().manual_seed(seed))
    td[keys.REWARD] *= reward_scale
    td[keys.MASK][1, seq_len - 2:] = False  # one shorter sequence: seeds' valid counts differ
    if mid_episode:  # the first sequences continue an episode from a stored hidden state
        td[keys.IS_INIT][: b // 2, 0] = False
        td[keys.HIDDEN] = torch.randn(b, A, H, generator=torch.Generator().manual_seed(seed + 1))
    return td


def solo_parts(seed, cfg=CFG, model=MODEL):
    torch.manual_seed(seed)
    return build_value_decomposition(cfg, model, INFO, "cpu", total_frames=1000)


def assert_same_learner(a, b, atol=1e-5):
    """Same online and target parameters, optimiser state and target-update count (``atol=0``: equal)."""
    close = torch.equal if atol == 0 else (lambda x, y: torch.allclose(x, y, atol=atol, rtol=1e-4))
    for (name, p), q in zip(a.loss.named_parameters(), b.loss.parameters()):
        assert close(p, q), name
    for p, q in zip(a.optimizers["loss"].param_groups[0]["params"], b.optimizers["loss"].param_groups[0]["params"]):
        sa, sb = a.optimizers["loss"].state.get(p, {}), b.optimizers["loss"].state.get(q, {})
        assert float(sa.get("step", 0)) == float(sb.get("step", 0))
        assert "exp_avg" not in sa or close(sa["exp_avg"], sb["exp_avg"])
    assert a.target_updater.num_steps == b.target_updater.num_steps


def test_stacked_gru_matches_nn_gru_and_its_gradient_checks():
    gen = torch.Generator().manual_seed(0)
    args = [torch.randn(*shape, generator=gen, dtype=torch.float64) * 0.5
            for shape in ((2, 4, 3, 5), (2, 3, H), (2, 5, 3 * H), (2, 1, 3 * H), (2, H, 3 * H), (2, 1, 3 * H))]
    assert torch.autograd.gradcheck(stacked_gru, [a.requires_grad_() for a in args])
    gru = torch.nn.GRU(5, H).double()
    x, h0 = args[0][1].detach(), args[1][1].detach()
    w = [gru.weight_ih_l0.t(), gru.bias_ih_l0[None], gru.weight_hh_l0.t(), gru.bias_hh_l0[None]]
    hs = stacked_gru(x[None], h0[None], *[p.detach()[None] for p in w])
    assert torch.allclose(hs[0], gru(x, h0[None])[0], atol=1e-12)


@pytest.mark.parametrize("chunk_elements", [None, 1])  # 1: the GRU kernel works one step per chunk
def test_seed_inside_stack_follows_seed_alone_with_clipping_and_target_copies(chunk_elements, monkeypatch):
    """N stacked steps leave each seed where N plain steps (``gradient_step``) leave it alone."""
    if chunk_elements is not None:
        monkeypatch.setattr(gru_kernel, "CHUNK_ELEMENTS", chunk_elements)
    seeds = [0, 1, 2]
    stack = StackedLearners.build(seeds, CFG, MODEL, INFO, "cpu", total_frames=1000)
    alone = [solo_parts(s) for s in seeds]
    for s in seeds:  # the same initial parameters as the seed's own build
        assert_same_learner(stack.parts[s], alone[s], atol=0.0)
    for step in range(5):
        batches = [batch(10 * step + s, reward_scale=1000.0 if s == 1 else 1.0) for s in seeds]
        logs = stack.step(batches)
        ref = [gradient_step(alone[s], batches[s]) for s in seeds]
        for s in seeds:
            for name in ("loss", "grads", "td_error", "q_value"):
                assert torch.allclose(logs[s][name], ref[s][name], rtol=1e-4, atol=1e-5), (step, s, name)
        if step == 0:  # the clip bites seed 1 only
            assert [float(log["grads"]) > CFG.grad_clip for log in logs] == [False, True, False]
    for s in seeds:
        assert stack.parts[s].target_updater.num_steps == 5  # hard copies at updates 2 and 4
        assert_same_learner(stack.parts[s], alone[s])


def test_clipping_all_seeds_at_once_equals_clip_grad_norm_of_each_seed():
    stack = StackedLearners.build([0, 1, 2], CFG, MODEL, INFO, "cpu", total_frames=1000)
    gen = torch.Generator().manual_seed(0)
    for k, part in enumerate(stack.parts):  # seed 1's gradients are big: its clip bites, the others' do not
        for p in part.loss.parameters():
            p.grad = torch.randn(p.shape, generator=gen) * (100.0 if k == 1 else 0.01) if p.requires_grad else None
    def clone(p):
        c = p.detach().clone()
        c.grad = p.grad.clone()
        return c

    alone = [[clone(p) for p in part.optimizers["loss"].param_groups[0]["params"] if p.grad is not None]
             for part in stack.parts]  # each seed's gradients, to clip alone
    norms = clip_per_seed(stack.parts)
    for k, params in enumerate(alone):
        assert torch.equal(norms[k], torch.nn.utils.clip_grad_norm_(params, CFG.grad_clip))
        clipped = [p.grad for p in stack.parts[k].optimizers["loss"].param_groups[0]["params"] if p.grad is not None]
        assert len(clipped) == len(params) and all(torch.equal(a, b.grad) for a, b in zip(clipped, params))
    assert [float(n) > CFG.grad_clip for n in norms] == [False, True, False]


def test_nonfinite_loss_skips_that_seed_only():
    seeds = [3, 4, 5]
    stack = StackedLearners.build(seeds, CFG, MODEL, INFO, "cpu", total_frames=1000)
    alone = [solo_parts(s) for s in seeds]

    def both_step(batches):
        return stack.step(batches), [gradient_step(parts, b) for parts, b in zip(alone, batches)]

    both_step([batch(s) for s in seeds])
    before = copy.deepcopy(stack.parts[1].loss.state_dict())
    bad = [batch(10 + s) for s in seeds]
    bad[1][keys.REWARD][0, 0] = float("nan")
    logs, ref = both_step(bad)
    assert [log.get("nonfinite") for log in logs] == [None, "loss", None] == [r.get("nonfinite") for r in ref]
    after = stack.parts[1].loss.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # seed 1 did not move
    assert stack.parts[1].target_updater.num_steps == 1
    both_step([batch(20 + s) for s in seeds])
    for k in range(3):  # seed 1's optimiser and target counter are one step behind, as alone
        assert_same_learner(stack.parts[k], alone[k])


def test_one_seed_equals_the_plain_path():
    stack = StackedLearners.build([7], CFG, MODEL, INFO, "cpu", total_frames=1000)
    alone = solo_parts(7)
    for step in range(3):
        log = stack.step([batch(step)])[0]
        ref = gradient_step(alone, batch(step))
        assert sorted(log) == sorted(ref)
        assert all(torch.allclose(log[k], ref[k], rtol=1e-5, atol=1e-6) for k in ref)
    assert_same_learner(stack.parts[0], alone, atol=1e-6)


def _loss(seed, mixer, net=None, **options):
    torch.manual_seed(seed)
    net = SharedAgentNet(F, A, N, hidden_dim=H, **(net or {}))
    return ValueDecompositionLoss(net, None if mixer is None else make_mixer(mixer, A, S), **options)


@pytest.mark.parametrize("mixer,net,options", [
    (None, {}, dict(td_lambda=0.0, double_q=False)),  # IQL, 1-step targets, target-network argmax
    ("vdn", dict(rnn=False, layer_norm=True, input_norm="layer"), dict(loss_function="smooth_l1")),  # MLP agents
    ("nonmonotonic", {}, dict(burn_in=2, standardise_rewards=True)),  # burn-in; per-seed reward statistics
    ("qmix", dict(input_layers=0, agent_id=False, activation="tanh"), {}),  # the GRU reads observations
    ("vdn", dict(input_layers=2, layer_norm=True), {}),  # PQN's reference depth: two layers before the GRU
])
def test_stacked_loss_equals_each_seeds_loss_and_gradient(mixer, net, options):
    losses = [_loss(s, mixer, net, **options) for s in range(2)]
    singles = copy.deepcopy(losses)
    batches = [batch(s, mid_episode=True, reward_scale=1.0 + 9 * s) for s in range(2)]
    out = StackedValueDecompositionLoss(losses)(batches)
    out["loss"].sum().backward()
    for s in range(2):
        ref = singles[s](batches[s])
        ref["loss"].backward()
        for name in ("loss", "td_error", "q_value", "agent_q_value", "target_value"):
            assert torch.allclose(out[name][s], ref[name], rtol=1e-5, atol=1e-6), (s, name)
        for (name, p), q in zip(losses[s].named_parameters(), singles[s].parameters()):
            assert (p.grad is None) == (q.grad is None), name
            assert p.grad is None or torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name
    if options.get("standardise_rewards"):
        assert not torch.equal(losses[0].reward_norm.var, losses[1].reward_norm.var)


def test_what_cannot_be_stacked_is_one_config_error():
    weighted = WeightedQMIXConfig(name="ow_qmix", weighting="ow")
    with pytest.raises(ConfigError, match="Weighted QMIX"):
        StackedLearners.build([0, 1], weighted, MODEL, INFO, "cpu", total_frames=1000)
    qplex = ValueDecompositionConfig(name="qplex", mixer="qplex")
    with pytest.raises(ConfigError, match="QPLEX|cannot stack"):
        StackedLearners.build([0], qplex, MODEL, INFO, "cpu", total_frames=1000)
    different = [_loss(0, "qmix", gamma=0.9), _loss(1, "qmix", gamma=0.99)]
    with pytest.raises(ConfigError, match="gamma"):
        StackedValueDecompositionLoss(different)
    mixers = [QMixer(A, S, mixing_embed_dim=8), QMixer(A, S, mixing_embed_dim=16)]
    losses = [ValueDecompositionLoss(SharedAgentNet(F, A, N, hidden_dim=H), m) for m in mixers]
    with pytest.raises(ConfigError, match="one architecture"):
        StackedValueDecompositionLoss(losses)
