"""K shared agent networks (one per seed) unrolled as one computation: :class:`StackedAgentNet`.

It reads the K :class:`~marl_torchrl.modules.agents.SharedAgentNet` s it is given (their parameters
stay theirs) and offers the one entry point the sequence losses use, ``unroll(obs, h0)``, on *folded*
batches: the rows of seed ``k`` are rows ``k * B ... (k + 1) * B - 1`` of ``obs [K * B, T, A, F]``. Each
linear layer is one batched product over the seeds, and a GRU runs as
:func:`~marl_torchrl.seeds.gru.stacked_gru` (time-major inside each seed, so every step is one product).

>>> import torch
>>> from marl_torchrl.modules.agents import SharedAgentNet
>>> nets = [SharedAgentNet(obs_dim=3, n_agents=2, out_dim=4, hidden_dim=8) for _ in range(3)]
>>> stack = StackedAgentNet(nets)
>>> obs, h0 = torch.randn(3 * 5, 6, 2, 3), torch.randn(3 * 5, 2, 8)      # 3 seeds x 5 sequences
>>> q, h_last = stack.unroll(obs, h0)
>>> q.shape, h_last.shape
(torch.Size([15, 6, 2, 4]), torch.Size([15, 2, 8]))
>>> torch.allclose(q[5:10], nets[1].unroll(obs[5:10], h0[5:10])[0], atol=1e-5)   # seed 1's rows
True
>>> starts = torch.rand(15, 6) < 0.3                                     # episodes restart inside rows
>>> q, hs = stack.unroll(obs, h0, all_hidden=True, starts=starts)
>>> torch.allclose(hs[5:10], nets[1].unroll(obs[5:10], h0[5:10], all_hidden=True, starts=starts[5:10])[1], atol=1e-5)
True
>>> torch.allclose(stack(obs[:, 0], h0)[0][10:], nets[2](obs[10:, 0], h0[10:])[0], atol=1e-5)   # one step
True
"""
from __future__ import annotations

from typing import Sequence

import torch

from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.registry import ConfigError
from marl_torchrl.seeds.functional import check_same_architecture, stacked, stacked_layers
from marl_torchrl.seeds.gru import stacked_gru

__all__ = ["StackedAgentNet"]


class StackedAgentNet:
    """``unroll`` of K same-architecture :class:`SharedAgentNet` s on folded ``[K * B, ...]`` batches.

    Not an ``nn.Module``: it owns no parameters, it reads the nets' own at every call.
    """

    def __init__(self, nets: Sequence[SharedAgentNet]):
        nets = list(nets)
        check_same_architecture(nets, "agent network")
        if not isinstance(nets[0], SharedAgentNet):
            raise ConfigError(f"stacked seeds need SharedAgentNet agents, got {type(nets[0]).__name__}")
        first = nets[0]
        self.nets, self.k = nets, len(nets)
        self.rnn, self.hidden_dim, self.n_agents = first.rnn, first.hidden_dim, first.n_agents

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        """``[K, ..., A, F] -> [K, M, H]``: input norm, agent id and the layers before the GRU (or the MLP)."""
        first = self.nets[0]
        if first.in_norm is not None:
            obs = stacked_layers([n.in_norm for n in self.nets], obs)  # each seed's LayerNorm or statistics
        if first.agent_id:
            obs = torch.cat([obs, first._eye.expand(*obs.shape[:-1], self.n_agents)], dim=-1)
        x = obs.reshape(self.k, -1, obs.shape[-1])
        return stacked_layers([n.body for n in self.nets], x) if len(first.body) else x

    def __call__(self, obs: torch.Tensor, hidden: torch.Tensor | None = None):
        """One step of every row of folded ``obs [K * B, ..., A, F]`` (``hidden [K * B, ..., A, H]``, None:
        zeros) -> ``(out, next_hidden)``, as ``SharedAgentNet.forward`` (``next_hidden`` None for MLP nets)."""
        lead, (a, f) = obs.shape[:-2], obs.shape[-2:]
        h = None if hidden is None else hidden.reshape(-1, a, self.hidden_dim)
        out, h = self.unroll(obs.reshape(-1, 1, a, f), h)
        return out.view(*lead, a, -1), None if h is None else h.view(*lead, a, self.hidden_dim)

    def unroll(self, obs: torch.Tensor, h0: torch.Tensor | None = None, *, all_hidden: bool = False,
               starts: torch.Tensor | None = None):
        """``obs [K * B, T, A, F]``, ``h0 [K * B, A, H]`` (None: zeros) -> ``(out [K * B, T, A, n], h_T)``;
        ``h_T`` is ``[K * B, A, H]`` (None for MLP nets), with ``all_hidden`` the state after every step
        ``[K * B, T, A, H]``; ``starts [K * B, T]`` zeroes the state before the marked steps: as
        ``SharedAgentNet.unroll``."""
        kb, t, a, f = obs.shape
        k, b = self.k, kb // self.k
        if b * k != kb:
            raise ValueError(f"{kb} rows do not split into {k} seeds")
        heads = [n.head for n in self.nets]
        if not self.rnn:
            out = stacked_layers(heads, self._features(obs.view(k, b, t, a, f)))
            return out.view(kb, t, a, -1), None
        x = self._features(obs.view(k, b, t, a, f).transpose(1, 2))  # time-major inside each seed
        hd = self.hidden_dim
        h0 = obs.new_zeros(k, b * a, hd) if h0 is None else h0.reshape(k, b * a, hd)
        keep = None
        if starts is not None:  # [K * B, T] -> [K, T, B * A, 1], the rows' order
            keep = (~starts.bool()).view(k, b, t, 1).transpose(1, 2).expand(k, t, b, a).reshape(k, t, b * a, 1)
        grus = [n.gru for n in self.nets]
        hs = stacked_gru(
            x.view(k, t, b * a, -1), h0,
            stacked(grus, "weight_ih_l0").transpose(1, 2), stacked(grus, "bias_ih_l0").unsqueeze(1),
            stacked(grus, "weight_hh_l0").transpose(1, 2), stacked(grus, "bias_hh_l0").unsqueeze(1), keep,
        )  # [K, T, B * A, H]
        out = stacked_layers(heads, hs.reshape(k, t * b * a, hd)).view(k, t, b, a, -1)
        out = out.transpose(1, 2).reshape(kb, t, a, -1)
        if all_hidden:
            return out, hs.view(k, t, b, a, hd).transpose(1, 2).reshape(kb, t, a, hd)
        return out, hs[:, -1].reshape(kb, a, hd)
