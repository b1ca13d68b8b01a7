"""``gru_sequence`` (the CPU training unroll's GRU with a hand-written backward) computes ``nn.GRU``'s
function and its gradients, and ``SharedAgentNet.unroll`` gives the same values and gradients whichever of
the two runs it."""
import pytest
import torch

from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.modules.fused_gru import _GRUSequence, gru_sequence


def test_gradcheck_in_double_precision():
    torch.manual_seed(0)
    gru = torch.nn.GRU(4, 6).double()
    x = torch.randn(5, 3, 4, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(3, 6, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h0, *p: _GRUSequence.apply(x, h0, *p), (x, h0, *gru.parameters()))


@pytest.mark.parametrize("steps,batch,in_dim,hidden", [(1, 1, 3, 4), (7, 5, 6, 8), (101, 24, 16, 128), (25, 96, 16, 64)])
@pytest.mark.parametrize("reads", ["outputs", "last_state", "both"])
def test_values_and_gradients_equal_nn_gru(steps, batch, in_dim, hidden, reads):
    torch.manual_seed(steps)
    gru = torch.nn.GRU(in_dim, hidden)
    x = torch.randn(steps, batch, in_dim, requires_grad=True)
    h0 = torch.randn(batch, hidden, requires_grad=True)
    w_y, w_h = torch.randn(steps, batch, hidden), torch.randn(batch, hidden)

    def loss(y, h):
        terms = {"outputs": (y * w_y).sum(), "last_state": (h * w_h).sum()}
        return terms[reads] if reads in terms else terms["outputs"] + terms["last_state"]

    y, h = gru_sequence(x, h0, gru)
    y_ref, h_ref = gru(x, h0.unsqueeze(0))
    torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h, h_ref[0], atol=1e-6, rtol=1e-5)
    inputs = [x, h0, *gru.parameters()]
    grads = torch.autograd.grad(loss(y, h), inputs)
    grads_ref = torch.autograd.grad(loss(y_ref, h_ref[0]), inputs)
    for name, g, g_ref in zip(["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"], grads, grads_ref):
        # sums over steps x batch rows, in another order: rounding grows with the gradient's scale
        atol = 1e-6 * max(1.0, float(g_ref.abs().max()))
        torch.testing.assert_close(g, g_ref, atol=atol, rtol=1e-5, msg=lambda m: f"{name}: {m}")


def test_unroll_uses_it_for_training_and_agrees_with_nn_gru():
    torch.manual_seed(0)
    net = SharedAgentNet(obs_dim=5, n_agents=3, out_dim=4, hidden_dim=16, rnn=True)
    obs, h0 = torch.randn(6, 9, 3, 5), torch.randn(6, 3, 16)
    with torch.no_grad():  # nn.GRU's path
        q_ref, h_ref = net.unroll(obs, h0)
    q, h = net.unroll(obs, h0)  # gru_sequence's path
    assert "GRUSequence" in type(h.grad_fn.next_functions[0][0]).__name__
    torch.testing.assert_close(q, q_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h, h_ref, atol=1e-6, rtol=1e-5)
    grads = torch.autograd.grad(q.square().sum(), list(net.parameters()))
    net.zero_grad()
    seq = net.body(net._inputs(obs)).permute(1, 0, 2, 3).reshape(9, 18, -1)
    y, _ = net.gru(seq, h0.reshape(1, 18, 16))  # nn.GRU with autograd's backward
    q_nn = net.head(y).reshape(9, 6, 3, 4).transpose(0, 1)
    grads_ref = torch.autograd.grad(q_nn.square().sum(), list(net.parameters()))
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref, atol=1e-6 * max(1.0, float(g_ref.abs().max())), rtol=1e-5)


def test_rejects_grus_it_does_not_implement():
    with pytest.raises(ValueError, match="one-layer"):
        gru_sequence(torch.randn(2, 1, 3), torch.randn(1, 4), torch.nn.GRU(3, 4, num_layers=2))
