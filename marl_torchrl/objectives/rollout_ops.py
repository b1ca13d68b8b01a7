"""Two pieces of on-policy rollout losses (PQN): Q(lambda) returns over a ``[E, T]`` rollout whose episodes
end and restart inside it, and a reset-aware unroll of a shared agent network over such a rollout.

In a collected rollout, step ``t`` of env row ``e`` holds the observation, the action, and under
``"next"`` the reward, the done flags and the next observation. An episode that ends at step ``t``
(``done``) is followed at ``t + 1`` by the reset observation of a new episode (``is_init`` True there).

>>> import torch
>>> r = torch.ones(1, 3, 1)
>>> v = torch.full((1, 3, 1), 10.0)
>>> done = torch.tensor([[[False], [True], [False]]])
>>> q_lambda_returns(r, torch.zeros(1, 3, 1), done, v, gamma=0.5, lam=1.0)[0, :, 0].tolist()
[4.0, 6.0, 6.0]
"""
from __future__ import annotations

import inspect

import torch
from torch import nn

from marl_torchrl.registry import ConfigError


def q_lambda_returns(reward: torch.Tensor, terminated: torch.Tensor, done: torch.Tensor, next_value: torch.Tensor,
                     *, gamma: float, lam: float) -> torch.Tensor:
    """Q(lambda) targets ``G_t`` for every step of ``[E, T, X]`` rollouts (``reward``/flags ``[E, T, 1]``).

    ``G_t = r_t + gamma * (1 - term_t) * ((1 - lam) * V_t + lam * G_{t+1})``, where ``V_t = next_value[:, t]``
    is the (greedy, mixed) value of step ``t``'s next observation, and ``G_{t+1}`` is replaced by ``V_t``
    where the episode ends at ``t`` (``done``: the next step belongs to another episode) and at the
    rollout's last step. So a terminated step earns its reward only, a truncated one bootstraps from its
    own final observation, and no return flows across an episode boundary.
    """
    if not 0.0 <= lam <= 1.0:
        raise ConfigError(f"td_lambda must be in [0, 1], got {lam}")
    dtype = next_value.dtype
    not_term = 1.0 - terminated.to(dtype)
    goes_on = 1.0 - done.to(dtype)
    out = torch.empty_like(reward + next_value)
    g_next = next_value[:, -1]
    for t in range(reward.shape[1] - 1, -1, -1):
        cont = goes_on[:, t] if t < reward.shape[1] - 1 else torch.zeros_like(goes_on[:, t])
        tail = cont * g_next + (1.0 - cont) * next_value[:, t]
        g_next = reward[:, t] + gamma * not_term[:, t] * ((1.0 - lam) * next_value[:, t] + lam * tail)
        out[:, t] = g_next
    return out


def unroll_with_resets(net: nn.Module, obs: torch.Tensor, h0: torch.Tensor | None, is_init: torch.Tensor):
    """Outputs ``[E, T, A, n]`` of a shared agent network over a rollout ``obs [E, T, A, F]``, and the
    hidden state after every step ``[E, T, A, H]`` (None for a feed-forward net).

    A recurrent net starts from ``h0 [E, A, H]`` (the state the acting policy had at the rollout's first
    step; None = zeros) and its state is zeroed where ``is_init`` ``[E, T, 1]`` marks an episode start, as
    the acting :class:`~marl_torchrl.modules.recurrence.AgentNetModule` does, so the values are the
    acting ones. The rollout is cut into its episode segments, padded side by side, and the GRU runs
    over all of them in one call (:func:`segments`); a net without ``unroll(..., all_hidden=True)`` is
    stepped one step at a time instead.

    >>> from marl_torchrl.modules.agents import SharedAgentNet
    >>> net = SharedAgentNet(3, 2, 4, hidden_dim=8)
    >>> obs, init = torch.randn(5, 6, 2, 3), torch.zeros(5, 6, 1, dtype=torch.bool)
    >>> init[:, 0] = True; init[:, 3] = True; init[1, 5] = True
    >>> h0 = torch.randn(5, 2, 8)
    >>> q, h = unroll_with_resets(net, obs, h0, init)
    >>> q.shape, h.shape
    (torch.Size([5, 6, 2, 4]), torch.Size([5, 6, 2, 8]))
    >>> torch.allclose(q[:, 3:5], net.unroll(obs[:, 3:5])[0], atol=1e-6)  # a fresh episode from step 3
    True
    >>> q_step, h_step = unroll_stepwise(net, obs, h0, init)  # the acting policy's own loop
    >>> torch.allclose(q, q_step, atol=1e-5) and torch.allclose(h, h_step, atol=1e-5)
    True
    """
    if not getattr(net, "rnn", False):
        return net(obs)[0], None
    if "all_hidden" not in inspect.signature(net.unroll).parameters:
        return unroll_stepwise(net, obs, h0, is_init)
    e, t_len = obs.shape[:2]
    seg, pos, first, n_seg = segments(is_init.reshape(e, t_len))
    padded = obs.new_zeros(n_seg, int(pos.max()) + 1, *obs.shape[2:])
    padded[seg, pos] = obs
    start = obs.new_zeros(n_seg, net.n_agents, net.hidden_dim)
    if h0 is not None:  # a row's first segment continues the acting state unless the episode starts there
        cont = ~is_init.reshape(e, t_len)[:, 0]
        start[first[cont]] = h0[cont].to(obs.dtype)
    out, hidden = net.unroll(padded, start, all_hidden=True)
    return out[seg, pos], hidden[seg, pos]


def segments(is_init: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Cut ``[E, T]`` rollout rows at episode starts (and at each row's first step). Returns, per step,
    its segment index ``[E, T]`` and position in the segment ``[E, T]``, each row's first segment ``[E]``
    and the number of segments.

    >>> init = torch.tensor([[False, False, True, False], [True, False, False, False]])
    >>> seg, pos, first, n = segments(init)
    >>> seg.tolist(), pos.tolist(), first.tolist(), n
    ([[0, 0, 1, 1], [2, 2, 2, 2]], [[0, 1, 0, 1], [0, 1, 2, 3]], [0, 2], 3)
    """
    starts = is_init.bool().clone()
    starts[:, 0] = True
    per_row = starts.sum(dim=1)
    first = torch.cumsum(per_row, dim=0) - per_row  # each row's first segment index
    seg = first.unsqueeze(1) + torch.cumsum(starts.long(), dim=1) - 1
    steps = torch.arange(is_init.shape[1], device=is_init.device).expand_as(starts)
    last_start = torch.where(starts, steps, torch.zeros_like(steps)).cummax(dim=1).values
    return seg, steps - last_start, first, int(per_row.sum())


def unroll_stepwise(net: nn.Module, obs: torch.Tensor, h0: torch.Tensor | None, is_init: torch.Tensor):
    """:func:`unroll_with_resets` one step at a time, exactly as acting calls ``net`` (the reference)."""
    e, t_len = obs.shape[:2]
    h = net.initial_hidden(e, device=obs.device).to(obs.dtype) if h0 is None else h0
    keep = 1.0 - is_init.reshape(e, t_len, 1, 1).to(obs.dtype)
    outs, hiddens = [], []
    for t in range(t_len):
        out, h = net(obs[:, t], h * keep[:, t])
        outs.append(out)
        hiddens.append(h)
    return torch.stack(outs, dim=1), torch.stack(hiddens, dim=1)
