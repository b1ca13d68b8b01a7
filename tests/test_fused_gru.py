"""The fused CPU GRU kernel: nn.GRU's values bit for bit, a correct hand-written backward."""
import pytest
import torch

from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.modules.fused_gru import gru_sequence


@pytest.mark.parametrize("n,t,h_in,h", [(3, 1, 4, 8), (5, 7, 6, 16), (24, 40, 32, 32)])
def test_forward_equals_nn_gru_bitwise(n, t, h_in, h):
    torch.manual_seed(0)
    gru = torch.nn.GRU(h_in, h, batch_first=True)
    x, h0 = torch.randn(n, t, h_in), torch.randn(n, h)
    y, h_t = gru_sequence(x, h0, gru)
    y_ref, h_ref = gru(x, h0.unsqueeze(0))
    assert torch.equal(y, y_ref) and torch.equal(h_t, h_ref[0])


def test_backward_passes_gradcheck_in_double():
    torch.manual_seed(1)
    gru = torch.nn.GRU(3, 5, batch_first=True).double()
    x = torch.randn(2, 6, 3, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(2, 5, dtype=torch.double, requires_grad=True)

    def f(x, h0, *params):
        for name, p in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), params):
            setattr(gru, name, p)  # plain tensors, so gradcheck perturbs them
        y, h_t = gru_sequence(x, h0, gru)
        return y, h_t

    params = [p.detach().clone().requires_grad_(True) for p in
              (gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)]
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        delattr(gru, name)
    assert torch.autograd.gradcheck(f, (x, h0, *params))


def test_gradients_match_autograd_through_nn_gru():
    torch.manual_seed(2)
    gru = torch.nn.GRU(16, 32, batch_first=True)
    x = torch.randn(8, 20, 16, requires_grad=True)
    h0 = torch.randn(8, 32, requires_grad=True)
    w = torch.randn(8, 20, 32)
    inputs = [x, h0, *gru.parameters()]
    y, h_t = gru_sequence(x, h0, gru)
    ours = torch.autograd.grad((y * w).sum() + h_t.square().sum(), inputs)
    y, h_t = gru(x, h0.unsqueeze(0))
    ref = torch.autograd.grad((y * w).sum() + h_t.square().sum(), inputs)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_agent_net_kernels_agree_and_keep_the_step_unroll_contract():
    torch.manual_seed(3)
    fused = SharedAgentNet(obs_dim=5, n_agents=3, out_dim=4, hidden_dim=16, gru_kernel="fused")
    plain = SharedAgentNet(obs_dim=5, n_agents=3, out_dim=4, hidden_dim=16, gru_kernel="torch")
    plain.load_state_dict(fused.state_dict())  # the same parameters, so checkpoints carry over
    obs, h0 = torch.randn(4, 9, 3, 5), torch.randn(4, 3, 16)
    q_fused, h_fused = fused.unroll(obs, h0)
    q_plain, h_plain = plain.unroll(obs, h0)
    assert torch.equal(q_fused, q_plain) and torch.equal(h_fused, h_plain)
    h, steps = h0, []
    for t in range(obs.shape[1]):
        q, h = fused(obs[:, t], h)
        steps.append(q)
    torch.testing.assert_close(torch.stack(steps, 1), q_fused, rtol=0, atol=1e-6)


def test_unknown_kernel_is_a_config_error():
    with pytest.raises(Exception, match="unknown gru_kernel 'cudnn'"):
        SharedAgentNet(obs_dim=2, n_agents=2, out_dim=2, gru_kernel="cudnn")
