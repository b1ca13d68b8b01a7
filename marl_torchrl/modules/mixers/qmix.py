"""QMIX: a monotonic mixing network whose weights come from state-conditioned hypernetworks.

PyMARL's mixer (Rashid et al. 2018), as a torchrl :class:`~torchrl.modules.models.multiagent.Mixer`
so it drops into torchrl's ``QMixerLoss`` as well as ours. Unlike torchrl's ``QMixer`` it offers
two-layer hypernetworks (PyMARL's default) and accepts any number of batch dimensions and
non-contiguous states (it never calls ``.view``).

>>> import torch
>>> from marl_torchrl.modules.mixers.qmix import QMixer
>>> mixer = QMixer(n_agents=3, state_dim=5, mixing_embed_dim=8, hypernet_layers=2, hypernet_embed=16)
>>> mixer(torch.randn(4, 10, 3, 1), torch.randn(4, 10, 5)).shape
torch.Size([4, 10, 1])
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from marl_torchrl.modules.mixers.base import StateMixer, resolve_state_dim
from marl_torchrl.registry import MIXERS, ConfigError

__all__ = ["QMixer", "build_qmix"]


def _hypernet(in_dim: int, out_dim: int, layers: int, hidden: int, device: Any) -> nn.Module:
    """A state -> weights hypernetwork: one Linear, or Linear-ReLU-Linear with ``hidden`` units."""
    if layers == 1:
        return nn.Linear(in_dim, out_dim, device=device)
    return nn.Sequential(
        nn.Linear(in_dim, hidden, device=device),
        nn.ReLU(),
        nn.Linear(hidden, out_dim, device=device),
    )


class QMixer(StateMixer):
    """Monotonic QMIX mixer: ``Q_tot = elu(q^T |W1(s)| + b1(s)) . |w_final(s)| + V(s)``.

    Args:
        n_agents: number of agents ``A``.
        state_dim: size ``S`` of the flat global state (or torchrl's keyword ``state_shape``: an int,
            tuple or ``torch.Size`` of a flat state), so torchrl's ``QMixer(state_shape=(S,),
            mixing_embed_dim=E, n_agents=A, device=...)`` call builds this mixer too.
        mixing_embed_dim: width ``E`` of the mixing layer (PyMARL: 32).
        hypernet_layers: 1 (single Linear hypernetworks) or 2 (Linear-ReLU-Linear, PyMARL's
            default) for ``W1`` and ``w_final``; ``b1`` is always one Linear, ``V(s)`` is
            Linear-ReLU-Linear, as in PyMARL.
        hypernet_embed: hidden width of the two-layer hypernetworks (PyMARL: 64).
        init_scale: multiplies the initial weights and biases of every hypernetwork's output layer
            (``W1``, ``b1``, ``w_final``, ``V``). 1.0 keeps PyTorch's default initialisation (PyMARL's);
            a small scale (JaxMARL's QMIX: 0.001) starts ``Q_tot`` near zero with mixing weights near
            zero, so the agents' own values carry the scale at first.
        state_norm: a LayerNorm over the state's features before every hypernetwork. The hypernetworks
            are piecewise linear in the state, so on an unbounded state (positions that drift) the mixing
            weights, and with them ``Q_tot``, grow with the state's magnitude; normalised, they cannot.
        device: torch device of the parameters.

    Inputs are ``q`` of shape ``[*B, A, 1]`` and ``state`` ``[*B, S]``; the output is ``[*B, 1]``.
    ``dQ_tot/dq_i >= 0`` for every agent, state and ``q``.

    >>> import torch
    >>> mixer = QMixer(n_agents=2, state_dim=4, mixing_embed_dim=8, hypernet_layers=1)
    >>> q = torch.zeros(6, 2, 1, requires_grad=True)
    >>> q_tot = mixer(q, torch.randn(6, 4))
    >>> q_tot.shape
    torch.Size([6, 1])
    >>> bool((torch.autograd.grad(q_tot.sum(), q)[0] >= 0).all())
    True
    >>> QMixer(2, 4, hypernet_layers=3)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: qmix hypernet_layers must be 1 or 2, got 3
    >>> QMixer(2, 4, init_scale=0.0)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: qmix mixer init_scale must be > 0, got 0.0
    >>> far = torch.randn(6, 4)
    >>> normed = QMixer(2, 4, state_norm=True)  # a state 10x as far gives the same Q_tot
    >>> torch.allclose(normed(q, far), normed(q, 10 * far), atol=1e-4)
    True
    """

    mixer_name = "qmix"  # in error messages

    def __init__(
        self,
        n_agents: int,
        state_dim: int | None = None,
        mixing_embed_dim: int = 32,
        hypernet_layers: int = 2,
        hypernet_embed: int = 64,
        device: Any = None,
        *,
        state_shape: Any = None,
        init_scale: float = 1.0,
        state_norm: bool = False,
    ):
        name = self.mixer_name
        if hypernet_layers not in (1, 2):
            raise ConfigError(f"{name} hypernet_layers must be 1 or 2, got {hypernet_layers}")
        if not float(init_scale) > 0:
            raise ConfigError(f"{name} mixer init_scale must be > 0, got {init_scale}")
        state_dim = resolve_state_dim(name, state_dim, state_shape)
        super().__init__(n_agents=int(n_agents), needs_state=True, state_shape=torch.Size([state_dim]), device=device)
        self.state_dim = state_dim
        self.embed_dim = int(mixing_embed_dim)
        self.hypernet_layers = int(hypernet_layers)
        self.hypernet_embed = int(hypernet_embed)
        S, E, A, H, L = self.state_dim, self.embed_dim, self.n_agents, self.hypernet_embed, self.hypernet_layers
        self.hyper_w_1 = _hypernet(S, A * E, L, H, device)
        self.hyper_w_final = _hypernet(S, E, L, H, device)
        self.hyper_b_1 = nn.Linear(S, E, device=device)
        self.V = nn.Sequential(nn.Linear(S, E, device=device), nn.ReLU(), nn.Linear(E, 1, device=device))
        self.init_scale = float(init_scale)
        self.state_norm = nn.LayerNorm(S, device=device) if state_norm else None
        if self.init_scale != 1.0:
            with torch.no_grad():
                for hyper in (self.hyper_w_1, self.hyper_b_1, self.hyper_w_final, self.V):
                    out = hyper if isinstance(hyper, nn.Linear) else hyper[-1]
                    out.weight.mul_(self.init_scale)
                    out.bias.mul_(self.init_scale)

    def constrain(self, weights: torch.Tensor) -> torch.Tensor:
        """Mixing weights from the hypernetworks: ``abs`` keeps ``dQ_tot/dq_i >= 0`` (monotonicity)."""
        return weights.abs()

    def mix(self, chosen_action_value: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Mix ``[*B, A, 1]`` agent values with a ``[*B, S]`` state into ``[*B, 1]``."""
        q = chosen_action_value.squeeze(-1)  # [*B, A]
        if self.state_norm is not None:
            state = self.state_norm(state)
        w1 = self.constrain(self.hyper_w_1(state)).unflatten(-1, (self.n_agents, self.embed_dim))  # [*B, A, E]
        b1 = self.hyper_b_1(state)  # [*B, E]
        # q @ w1 per batch row, as a product and a sum over the A agents: a batched matmul of [1, A] by
        # [A, E] matrices runs about 4x slower on CPU (forward and backward) for the same numbers
        hidden = nn.functional.elu((q.unsqueeze(-1) * w1).sum(-2) + b1)  # [*B, E]
        w_final = self.constrain(self.hyper_w_final(state))  # [*B, E]
        return (hidden * w_final).sum(-1, keepdim=True) + self.V(state)  # [*B, 1]

    def extra_repr(self) -> str:
        return (
            f"n_agents={self.n_agents}, state_dim={self.state_dim}, embed_dim={self.embed_dim}, "
            f"hypernet_layers={self.hypernet_layers}, hypernet_embed={self.hypernet_embed}, "
            f"init_scale={self.init_scale}, state_norm={self.state_norm is not None}"
        )


#: ``build_qmix(n_agents, state_dim, **options)``, registered as mixer ``"qmix"``; unknown options
#: are a ``ConfigError``.
build_qmix = MIXERS.register_class("qmix", QMixer, ("device", "hypernet_embed", "hypernet_layers", "mixing_embed_dim",
                                                              "init_scale", "state_norm"))
