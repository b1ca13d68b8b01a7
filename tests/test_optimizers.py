"""make_optimizer runs torch's single-kernel implementations; they must take the same steps as torch's
per-tensor reference loop (Adam fused and RAdam foreach: up to float rounding; RMSprop foreach: bit for bit)."""
import pytest
import torch

from marl_torchrl.algorithms.base import make_optimizer
from marl_torchrl.registry import ConfigError

REFERENCE = {"adam": lambda ps: torch.optim.Adam(ps, lr=1e-2, foreach=False),
             "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=1e-2, alpha=0.99, eps=1e-5, foreach=False),
             "radam": lambda ps: torch.optim.RAdam(ps, lr=1e-2, foreach=False)}


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


@pytest.mark.parametrize("name", ["adam", "rmsprop", "radam"])
def test_fast_optimizer_takes_the_reference_steps(name):
    ours, ref = _net(0), _net(0)
    opt_ours, opt_ref = make_optimizer(name, ours.parameters(), lr=1e-2), REFERENCE[name](list(ref.parameters()))
    x = torch.randn(32, 5, generator=torch.Generator().manual_seed(1))
    for _ in range(50):
        for net, opt in ((ours, opt_ours), (ref, opt_ref)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        if name == "rmsprop":
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(next(ours.parameters()), next(_net(0).parameters()))  # it did train


def test_frozen_parameters_are_left_out_and_bad_names_are_config_errors():
    net = _net(0)
    net[0].weight.requires_grad_(False)
    opt = make_optimizer("adam", net.parameters(), lr=1e-3)
    assert sum(len(g["params"]) for g in opt.param_groups) == 3
    with pytest.raises(ConfigError, match="unknown optimizer 'sgd'"):
        make_optimizer("sgd", net.parameters(), lr=1e-3)
    with pytest.raises(ConfigError, match="lr must be > 0"):
        make_optimizer("adam", net.parameters(), lr=0.0)
