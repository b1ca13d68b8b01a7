"""Weighted QMIX (Rashid et al. 2020, oxwhirl/wqmix ``max_q_learner.py``): the pieces the
value-decomposition loss adds when it is given a central ``Q*`` and a weighting.

- :class:`CentralQ`: the unrestricted joint-action value ``Q*(s, u)``: its own agent network (one value
  per action and agent) and a :class:`~marl_torchrl.modules.mixers.feedforward.FeedForwardMixer`.
  Its target copy scores QMIX's greedy joint actions to make the targets of both ``Q_tot`` and ``Q*``.
- :func:`wqmix_weights`: per-transition weights of QMIX's squared TD error, 1 or ``alpha``:
  OW (optimistic) keeps 1 where ``Q_tot(s, u) < y``; CW (centrally weighted) keeps 1 where ``u`` is
  QMIX's greedy joint action or ``y > Q*(s, u_greedy)``.
- :func:`greedy_actions`, :func:`check_weighting`: small helpers.

>>> import torch
>>> q_tot, y = torch.tensor([[[1.0], [3.0]]]), torch.tensor([[[2.0], [2.0]]])
>>> wqmix_weights("ow", q_tot, y, alpha=0.1).flatten().tolist()
[1.0, 0.10000000149011612]
"""
from __future__ import annotations

import torch
from torch import nn

from marl_torchrl.registry import ConfigError

WEIGHTINGS = ("ow", "cw")

__all__ = ["WEIGHTINGS", "CentralQ", "wqmix_weights", "greedy_actions", "check_weighting"]


class CentralQ(nn.Module):
    """Weighted QMIX's central ``Q*(s, u) = mixer(q_1(o_1, u_1), ..., q_A(o_A, u_A); s)``.

    Args:
        agent_net: a :class:`~marl_torchrl.modules.agents.SharedAgentNet` with one output per action
            (its own parameters: not the acting QMIX network).
        mixer: an unrestricted mixer needing the state, e.g.
            :class:`~marl_torchrl.modules.mixers.feedforward.FeedForwardMixer`.

    ``unroll(obs, h0)`` gives per-agent values ``[N, T, A, n]`` (from a zero hidden state unless ``h0``
    is given: ``Q*`` never acts, so replay stores no hidden state for it); ``joint_value(q, u, s)``
    gathers the values of joint actions ``u`` ``[*B, A, 1]`` and mixes them into ``[*B, 1]``.

    >>> import torch
    >>> from marl_torchrl.modules.agents import SharedAgentNet
    >>> from marl_torchrl.modules.mixers.feedforward import FeedForwardMixer
    >>> central = CentralQ(SharedAgentNet(obs_dim=3, n_agents=2, out_dim=4, hidden_dim=8),
    ...                    FeedForwardMixer(n_agents=2, state_dim=5, mixing_embed_dim=16))
    >>> q = central.unroll(torch.randn(6, 7, 2, 3))
    >>> q.shape
    torch.Size([6, 7, 2, 4])
    >>> central.joint_value(q, torch.zeros(6, 7, 2, 1, dtype=torch.long), torch.randn(6, 7, 5)).shape
    torch.Size([6, 7, 1])
    """

    def __init__(self, agent_net: nn.Module, mixer: nn.Module):
        super().__init__()
        if not getattr(mixer, "needs_state", True):
            raise ConfigError(f"the central mixer must take the state; {type(mixer).__name__} does not")
        self.agent_net = agent_net
        self.mixer = mixer

    def unroll(self, obs: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """Per-agent values ``[N, T, A, n]`` of a ``[N, T, A, F]`` observation sequence."""
        return self.agent_net.unroll(obs, h0)[0]

    def joint_value(self, q: torch.Tensor, action: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``Q*(s, u)`` ``[*B, 1]`` from values ``q`` ``[*B, A, n]`` and joint actions ``u`` ``[*B, A, 1]``."""
        return self.mixer(q.gather(-1, action), state.contiguous())

    def forward(self, obs: torch.Tensor, action: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``Q*`` of joint actions ``[N, T, A, 1]`` over a sequence: ``joint_value(unroll(obs), ...)``."""
        return self.joint_value(self.unroll(obs), action, state)


def greedy_actions(q: torch.Tensor, avail: torch.Tensor | None = None) -> torch.Tensor:
    """Each agent's greedy action ``[*B, A, 1]`` among its available ones (``avail`` ``[*B, A, n]``).

    >>> q = torch.tensor([[1.0, 5.0, 2.0], [0.0, 1.0, 3.0]])
    >>> greedy_actions(q).flatten().tolist(), greedy_actions(q, torch.tensor([[1, 0, 1], [1, 1, 0]])).flatten().tolist()
    ([1, 2], [2, 1])
    """
    if avail is not None:
        q = q.masked_fill(~avail.bool(), float("-inf"))
    return q.argmax(dim=-1, keepdim=True)


def check_weighting(weighting: str | None, alpha: float, central, mixer) -> None:
    """A one-line :class:`ConfigError` for an unusable Weighted QMIX configuration.

    >>> check_weighting("ow", 0.1, central=object(), mixer=object())
    >>> check_weighting("ow", 1.5, central=object(), mixer=object())
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: weighted QMIX alpha must be in (0, 1], got 1.5
    """
    if weighting is not None and weighting not in WEIGHTINGS:
        raise ConfigError(f"unknown weighting '{weighting}'; known: {', '.join(WEIGHTINGS)} (or null)")
    if weighting is not None and central is None:
        raise ConfigError(f"weighting '{weighting}' needs a central Q* (central=CentralQ(...)); got none")
    if central is not None and mixer is None:
        raise ConfigError("weighted QMIX (a central Q*) needs a mixer; got mixer=None (IQL)")
    try:
        in_range = 0.0 < float(alpha) <= 1.0
    except (TypeError, ValueError):
        in_range = False
    if not in_range:
        raise ConfigError(f"weighted QMIX alpha must be in (0, 1], got {alpha}")


@torch.no_grad()
def wqmix_weights(
    kind: str,
    q_tot: torch.Tensor,
    target: torch.Tensor,
    alpha: float,
    is_greedy: torch.Tensor | None = None,
    central_greedy_value: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weights (1 or ``alpha``) of QMIX's squared TD errors, shaped like ``q_tot``; no gradient.

    Args:
        kind: ``"ow"`` (optimistic: 1 where ``q_tot < target``) or ``"cw"`` (centrally weighted: 1 where
            ``is_greedy`` or ``target > central_greedy_value``).
        q_tot: QMIX's ``Q_tot(s, u)`` of the taken joint actions.
        target: the targets ``y``.
        alpha: the down-weighting, in ``(0, 1]``.
        is_greedy: (CW) bool, the taken joint action is QMIX's greedy one (every agent's action).
        central_greedy_value: (CW) the target ``Q*(s, u_greedy)`` at QMIX's greedy joint action.

    >>> q_tot = torch.tensor([1.0, 5.0, 5.0, 1.0])
    >>> y = torch.tensor([2.0, 2.0, 2.0, 2.0])
    >>> wqmix_weights("ow", q_tot, y, 0.5).tolist()
    [1.0, 0.5, 0.5, 1.0]
    >>> greedy = torch.tensor([False, True, False, False])
    >>> q_star_greedy = torch.tensor([3.0, 3.0, 1.0, 3.0])
    >>> wqmix_weights("cw", q_tot, y, 0.5, is_greedy=greedy, central_greedy_value=q_star_greedy).tolist()
    [0.5, 1.0, 1.0, 0.5]
    """
    if kind == "ow":
        keep = q_tot < target
    elif kind == "cw":
        if is_greedy is None or central_greedy_value is None:
            raise ValueError("cw weights need is_greedy and central_greedy_value")
        keep = is_greedy.bool() | (target > central_greedy_value)
    else:
        raise ConfigError(f"unknown weighting '{kind}'; known: {', '.join(WEIGHTINGS)}")
    keep = keep.expand_as(q_tot)
    return torch.where(keep, torch.ones_like(q_tot), torch.full_like(q_tot, float(alpha)))
