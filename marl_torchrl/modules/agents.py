"""Shared agent networks: one set of parameters for every agent, MLP or GRU.

The network maps each agent's observation (plus, optionally, a one-hot agent id) to an output vector
(Q-values, logits, actions...). It has two entry points that share the same weights and kernels:

- ``forward(obs, hidden)``: one step for acting, ``obs`` ``[*B, A, F]``, ``hidden`` ``[*B, A, H]``;
- ``unroll(obs, h0)``: a whole sequence for training, ``obs`` ``[N, T, A, F]``, ``h0`` ``[N, A, H]``,
  run as one ``nn.GRU`` call over time (no Python loop over steps); with ``starts`` ``[N, T]`` the state
  is reset to zero before the marked steps (episodes that restart inside a row), through the same GRU
  weights in :func:`~marl_torchrl.modules.gru_kernel.stacked_gru`.

Both use the same ``nn.GRU`` module, so stepping T times and unrolling T steps give the same values:
this is the recurrent contract the losses rely on.

>>> import torch
>>> net = SharedAgentNet(obs_dim=5, n_agents=3, out_dim=4, hidden_dim=16, rnn=True)
>>> q, h = net(torch.randn(8, 3, 5))            # first step: hidden starts at zero
>>> q.shape, h.shape
(torch.Size([8, 3, 4]), torch.Size([8, 3, 16]))
>>> q_seq, h_last = net.unroll(torch.randn(8, 10, 3, 5), torch.zeros(8, 3, 16))
>>> q_seq.shape
torch.Size([8, 10, 3, 4])
"""
from __future__ import annotations

import math

import torch
from torch import nn

from marl_torchrl.modules.gru_kernel import stacked_gru
from marl_torchrl.modules.running_norm import RunningStandardise
from marl_torchrl.registry import ConfigError

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU}
_INPUT_NORMS = {None: lambda features: None, "layer": nn.LayerNorm, "running": RunningStandardise}


def _activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ConfigError(f"unknown activation '{name}'; known: {', '.join(sorted(_ACTIVATIONS))}")
    return _ACTIVATIONS[name]()


class SharedAgentNet(nn.Module):
    """One network shared by all agents: ``[in -> H] -> (GRU | MLP layers) -> [H -> out]``.

    A GRU agent has ``input_layers`` layers before the GRU: PyMARL's one (the default), PQN's reference two;
    with ``input_layers=0`` it reads its input directly, ``GRU(in -> H) -> [H -> out]`` (the recurrent model
    of torchrl's and BenchMARL's examples).

    Args:
        obs_dim: per-agent input features F.
        n_agents: number of agents A (only used for the one-hot id).
        out_dim: output features per agent (e.g. number of actions).
        hidden_dim: width H of every hidden layer and of the GRU state.
        rnn: a GRU after the first layer (PyMARL's RNN agent) if True, else an MLP.
        layers: number of hidden layers of the MLP (``rnn=False`` only).
        input_layers: number of ``[-> H]`` layers before the GRU (``rnn=True`` only; 0: none).
        agent_id: append a one-hot agent id to each agent's input.
        layer_norm: LayerNorm after each hidden linear layer.
        input_norm: normalisation of each agent's observation features, before the agent id is appended:
            None; ``"layer"``, a LayerNorm over them (stateless); or ``"running"``, a per-feature
            :class:`~marl_torchrl.modules.running_norm.RunningStandardise` whose statistics move only in
            :meth:`observe` (the role of the input BatchNorm in PQN's reference SMAX network).
        activation: ``relu``, ``tanh``, ``elu`` or ``gelu``.
        orthogonal_init: orthogonal weights (gain sqrt(2) on hidden layers, ``out_gain`` on the head).
        out_gain: gain of the output layer's orthogonal init.

    >>> net = SharedAgentNet(obs_dim=4, n_agents=2, out_dim=3, rnn=False, layers=2, agent_id=True)
    >>> net(torch.zeros(7, 2, 4))[0].shape
    torch.Size([7, 2, 3])
    """

    def __init__(
        self,
        obs_dim: int,
        n_agents: int,
        out_dim: int,
        *,
        hidden_dim: int = 64,
        rnn: bool = True,
        layers: int = 2,
        agent_id: bool = True,
        layer_norm: bool = False,
        input_norm: str | None = None,
        activation: str = "relu",
        orthogonal_init: bool = True,
        out_gain: float = 1.0,
        input_layers: int = 1,
    ):
        super().__init__()
        if hidden_dim < 1 or layers < 1 or input_layers < 0:
            raise ConfigError(f"hidden_dim and layers must be >= 1 and input_layers >= 0, got {hidden_dim}, "
                              f"{layers} and {input_layers}")
        if not rnn and input_layers != 1:
            raise ConfigError(f"input_layers={input_layers} is for GRU agents; an MLP agent's depth is its layers")
        self.obs_dim, self.n_agents, self.out_dim = obs_dim, n_agents, out_dim
        self.hidden_dim, self.rnn, self.agent_id = hidden_dim, rnn, agent_id
        in_dim = obs_dim + (n_agents if agent_id else 0)
        if input_norm not in _INPUT_NORMS:
            raise ConfigError(f"input_norm must be one of {', '.join(map(str, _INPUT_NORMS))}, got {input_norm!r}")
        self.in_norm = _INPUT_NORMS[input_norm](obs_dim)
        n_mlp = input_layers if rnn else layers
        body: list[nn.Module] = []
        for i in range(n_mlp):
            body.append(nn.Linear(in_dim if i == 0 else hidden_dim, hidden_dim))
            if layer_norm:
                body.append(nn.LayerNorm(hidden_dim))
            body.append(_activation(activation))
        self.body = nn.Sequential(*body)
        gru_in = hidden_dim if n_mlp else in_dim
        self.gru = nn.GRU(gru_in, hidden_dim) if rnn else None
        self.head = nn.Linear(hidden_dim, out_dim)
        if agent_id:
            self.register_buffer("_eye", torch.eye(n_agents), persistent=False)
        if orthogonal_init:
            self._orthogonal_init(out_gain)

    def _orthogonal_init(self, out_gain: float) -> None:
        for m in self.body:
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight, gain=math.sqrt(2))
                nn.init.zeros_(m.bias)
        nn.init.orthogonal_(self.head.weight, gain=out_gain)
        nn.init.zeros_(self.head.bias)
        if self.gru is not None:
            for name, p in self.gru.named_parameters():
                if "weight" in name:
                    nn.init.orthogonal_(p)
                else:
                    nn.init.zeros_(p)

    def _check_obs(self, obs: torch.Tensor) -> None:
        if obs.shape[-2:] != (self.n_agents, self.obs_dim):
            raise ValueError(
                f"agent network expects observations [..., {self.n_agents}, {self.obs_dim}], got {tuple(obs.shape)}"
            )

    def _inputs(self, obs: torch.Tensor) -> torch.Tensor:
        self._check_obs(obs)
        if self.in_norm is not None:
            obs = self.in_norm(obs)
        if not self.agent_id:
            return obs
        return torch.cat([obs, self._eye.expand(*obs.shape[:-1], self.n_agents)], dim=-1)

    def observe(self, obs: torch.Tensor) -> None:
        """Move the running input statistics (``input_norm="running"``) by the collected observations
        ``obs [..., A, F]``; nothing for the other input norms. The loop calls it once per collected batch.

        >>> net = SharedAgentNet(2, 1, 3, rnn=False, input_norm="running")
        >>> net.observe(torch.tensor([[[0.0, 4.0]], [[2.0, 4.0]]]))
        >>> net.in_norm.mean.tolist()
        [1.0, 4.0]
        """
        if isinstance(self.in_norm, RunningStandardise):
            self._check_obs(obs)
            self.in_norm.update(obs)

    def initial_hidden(self, *batch: int, device=None) -> torch.Tensor:
        """Zero hidden state ``[*batch, A, H]`` (what every episode starts from)."""
        return torch.zeros(*batch, self.n_agents, self.hidden_dim, device=device)

    def forward(self, obs: torch.Tensor, hidden: torch.Tensor | None = None):
        """One step: ``obs [*B, A, F]``, ``hidden [*B, A, H]`` (None = zeros) -> ``(out, next_hidden)``.

        For an MLP network ``next_hidden`` is None.
        """
        x = self.body(self._inputs(obs))
        if self.gru is None:
            return self.head(x), None
        lead = x.shape[:-1]
        if hidden is None:
            hidden = torch.zeros(*lead, self.hidden_dim, device=x.device, dtype=x.dtype)
        y, h = self.gru(x.reshape(1, -1, x.shape[-1]), hidden.reshape(1, -1, self.hidden_dim))
        return self.head(y.reshape(*lead, self.hidden_dim)), h.reshape(*lead, self.hidden_dim)

    def unroll(self, obs: torch.Tensor, h0: torch.Tensor | None = None, *, all_hidden: bool = False,
               starts: torch.Tensor | None = None):
        """A sequence: ``obs [N, T, A, F]``, ``h0 [N, A, H]`` -> ``(out [N, T, A, out], h_T [N, A, H])``;
        with ``all_hidden`` the second output is the state after every step, ``[N, T, A, H]``. ``starts``
        ``[N, T]`` (bool) resets the state to zero before the marked steps, as acting does at ``is_init``.

        The GRU runs over the whole time axis in one call; an MLP network just maps every step.

        >>> net = SharedAgentNet(3, 2, 4, hidden_dim=8)
        >>> obs, starts = torch.randn(5, 6, 2, 3), torch.zeros(5, 6, dtype=torch.bool)
        >>> starts[:, 2] = True
        >>> q = net.unroll(obs, torch.randn(5, 2, 8), starts=starts)[0]
        >>> torch.allclose(q[:, 2:], net.unroll(obs[:, 2:])[0], atol=1e-6)  # a fresh episode from step 2
        True
        """
        x = self.body(self._inputs(obs))
        if self.gru is None:
            return self.head(x), None
        n, t, a, f = x.shape
        hd = self.hidden_dim
        if h0 is None:
            h0 = torch.zeros(n, a, hd, device=x.device, dtype=x.dtype)
        seq = x.permute(1, 0, 2, 3).reshape(t, n * a, f)  # time-major; rows are (sequence, agent)
        if starts is None:
            y, h = self.gru(seq, h0.reshape(1, n * a, hd))
        else:
            y = self._reset_unroll(seq, h0.reshape(n * a, hd), starts)
            h = y[-1:]
        out = self.head(y)  # [T, N * A, out]: the head reads contiguous rows
        if all_hidden:  # a GRU's outputs are its states
            return out.reshape(t, n, a, -1).transpose(0, 1), y.reshape(t, n, a, hd).transpose(0, 1)
        return out.reshape(t, n, a, -1).transpose(0, 1), h.reshape(n, a, hd)

    def _reset_unroll(self, seq: torch.Tensor, h0: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """``nn.GRU``'s states over time-major ``seq [T, R, F]`` from ``h0 [R, H]``, zeroed before ``starts``."""
        t, rows = seq.shape[:2]
        keep = (~starts.bool()).t().reshape(t, -1, 1).expand(t, starts.shape[0], rows // starts.shape[0])
        g = self.gru
        return stacked_gru(seq[None], h0[None], g.weight_ih_l0.t()[None], g.bias_ih_l0.view(1, 1, -1),
                           g.weight_hh_l0.t()[None], g.bias_hh_l0.view(1, 1, -1),
                           keep.reshape(1, t, rows, 1))[0]
