"""The hand-written GRU (modules/gru_kernel.py) with resets inside a row, and the shared agent network's
reset-aware unroll built on it: the same values and gradients as ``nn.GRU`` stepped with the resets."""
import torch

from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.modules.gru_kernel import stacked_gru

H = 4


def _args(gen):
    shapes = ((2, 6, 3, 5), (2, 3, H), (2, 5, 3 * H), (2, 1, 3 * H), (2, H, 3 * H), (2, 1, 3 * H))
    return [torch.randn(*s, generator=gen, dtype=torch.float64) * 0.5 for s in shapes]


def test_gru_with_resets_gradient_checks_and_matches_nn_gru_stepped():
    gen = torch.Generator().manual_seed(0)
    args = _args(gen)
    keep = (torch.rand(2, 6, 3, 1, generator=gen, dtype=torch.float64) > 0.3).double()
    assert (keep == 0).any() and (keep == 1).any()
    assert torch.autograd.gradcheck(lambda *a: stacked_gru(*a, keep), [a.requires_grad_() for a in args])
    gru = torch.nn.GRU(5, H).double()
    x, h0 = args[0][1].detach(), args[1][1].detach()
    w = [gru.weight_ih_l0.t(), gru.bias_ih_l0[None], gru.weight_hh_l0.t(), gru.bias_hh_l0[None]]
    hs = stacked_gru(x[None], h0[None], *[p.detach()[None] for p in w], keep[1:2])
    h, ref = h0[None], []
    for t in range(6):
        h = gru(x[t:t + 1], h * keep[1, t][None])[1]
        ref.append(h[0])
    torch.testing.assert_close(hs[0], torch.stack(ref), rtol=0, atol=1e-12)


def test_agent_unroll_with_starts_equals_nn_gru_values_and_gradients():
    """No start inside the rows: the kernel path and nn.GRU's one call give the same values and gradients."""
    torch.manual_seed(0)
    net = SharedAgentNet(3, 2, 4, hidden_dim=8, layer_norm=True, input_norm="layer")
    obs, h0 = torch.randn(5, 7, 2, 3), torch.randn(5, 2, 8)
    results = []
    for starts in (None, torch.zeros(5, 7, dtype=torch.bool)):
        net.zero_grad()
        q, h = net.unroll(obs, h0, all_hidden=True, starts=starts)
        (q.square().sum() + h.sum()).backward()
        results.append((q.detach(), h.detach(), [p.grad.clone() for p in net.parameters()]))
    (q_a, h_a, g_a), (q_b, h_b, g_b) = results
    torch.testing.assert_close(q_a, q_b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h_a, h_b, rtol=1e-5, atol=1e-6)
    for a, b in zip(g_a, g_b):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_chunked_steps_give_the_same_values_and_gradients_as_one_chunk():
    """The input projection and the backward's gradient products, done a few steps at a time (last chunk
    shorter), pass gradcheck with resets and equal the one-chunk run's values and gradients."""
    gen = torch.Generator().manual_seed(1)
    args = _args(gen)
    keep = (torch.rand(2, 6, 3, 1, generator=gen, dtype=torch.float64) > 0.3).double()
    assert torch.autograd.gradcheck(lambda *a: stacked_gru(*a, keep, chunk=4), [a.requires_grad_() for a in args])
    d_out = torch.randn(2, 6, 3, H, generator=gen, dtype=torch.float64)
    results = []
    for chunk in (6, 1, 4):
        hs = stacked_gru(*args, keep, chunk=chunk)
        results.append([hs, *torch.autograd.grad(hs, args, d_out)])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
