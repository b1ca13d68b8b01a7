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
    boot = gamma * (1.0 - terminated.to(dtype))  # [E, T, 1]
    goes_on = 1.0 - done.to(dtype)
    goes_on[:, -1] = 0.0  # the rollout's last step bootstraps from its next value
    # G_t = a_t + b_t * G_{t+1}: the per-step terms at once, then one fused op per step
    a = reward + boot * (1.0 - lam * goes_on) * next_value
    b = boot * lam * goes_on
    out = torch.empty_like(a)
    out[:, -1] = a[:, -1]
    for t in range(reward.shape[1] - 2, -1, -1):
        torch.addcmul(a[:, t], b[:, t], out[:, t + 1], out=out[:, t])
    return out


def unroll_with_resets(net: nn.Module, obs: torch.Tensor, h0: torch.Tensor | None, is_init: torch.Tensor):
    """Outputs ``[E, T, A, n]`` of a shared agent network over a rollout ``obs [E, T, A, F]``, and the
    hidden state after every step ``[E, T, A, H]`` (None for a feed-forward net).

    A recurrent net starts from ``h0 [E, A, H]`` (the state the acting policy had at the rollout's first
    step; None = zeros) and its state is zeroed where ``is_init`` ``[E, T, 1]`` marks an episode start, as
    the acting :class:`~marl_torchrl.modules.recurrence.AgentNetModule` does, so the values are the
    acting ones. The whole rows run through one reset-aware unroll (``net.unroll(..., starts=...)``); a
    net without it is stepped one step at a time instead.

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
    if not _resets_in_unroll(net):
        return unroll_stepwise(net, obs, h0, is_init)
    return net.unroll(obs, h0, all_hidden=True, starts=is_init.reshape(obs.shape[:2]))


def unroll_with_next(net: nn.Module, obs: torch.Tensor, next_obs: torch.Tensor, h0: torch.Tensor | None,
                     is_init: torch.Tensor, done: torch.Tensor):
    """:func:`unroll_with_resets` plus the outputs for each step's next observation, ``next_obs``, from the
    state after that step: ``(out, hidden, next_out)``, all ``[E, T, ...]``, in one unroll.

    In a collected rollout a step's next observation is the following step's observation, except where
    the episode ends (``done`` ``[E, T, 1]``: the final observation, then a reset one) and at the rollout's
    last step. So each row is unrolled once, with the final observation slotted in after each of its
    done steps and after its last step, and ``next_out[t]`` is the output one slot after step ``t``'s:
    one pass instead of a second network call over every next observation (one host read: the layout's
    length). A net without a reset-aware ``unroll`` takes that second call instead.

    >>> from marl_torchrl.modules.agents import SharedAgentNet
    >>> net = SharedAgentNet(3, 2, 4, hidden_dim=8)
    >>> obs = torch.randn(2, 5, 2, 3)
    >>> done = torch.zeros(2, 5, 1, dtype=torch.bool); done[0, 1] = True
    >>> init = torch.zeros_like(done); init[0, 2] = True
    >>> nxt = torch.cat([obs[:, 1:], torch.randn(2, 1, 2, 3)], 1); nxt[0, 1] = torch.randn(2, 3)  # a final obs
    >>> q, h, q_next = unroll_with_next(net, obs, nxt, None, init, done)
    >>> torch.allclose(q_next, net(nxt, h)[0], atol=1e-5)  # each next observation from its step's state
    True
    """
    if getattr(net, "rnn", False) and not _resets_in_unroll(net):
        q, h = unroll_stepwise(net, obs, h0, is_init)
        with torch.no_grad():
            return q, h, net(next_obs, h.detach())[0]
    e, t_len = obs.shape[:2]
    slot = done.reshape(e, t_len).clone()  # steps followed by a slotted-in next observation
    slot[:, -1] = True
    pos = torch.arange(t_len, device=obs.device) + torch.cumsum(slot, 1) - slot.long()  # each step's slot
    rows = torch.arange(e, device=obs.device).unsqueeze(1)
    ext = obs.new_zeros(e, t_len + int(slot.sum(1).max()), *obs.shape[2:])
    ext[rows, pos + 1] = next_obs  # then overwritten by the following step where the episode goes on
    ext[rows, pos] = obs
    if not getattr(net, "rnn", False):
        out = net(ext)[0]
        return out[rows, pos], None, out[rows, pos + 1]
    starts = torch.zeros(ext.shape[:2], dtype=torch.bool, device=obs.device)
    starts[rows, pos] = is_init.reshape(e, t_len).bool()
    out, hidden = net.unroll(ext, h0, all_hidden=True, starts=starts)
    return out[rows, pos], hidden[rows, pos], out[rows, pos + 1]


def _resets_in_unroll(net: nn.Module) -> bool:
    return "starts" in inspect.signature(net.unroll).parameters


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
