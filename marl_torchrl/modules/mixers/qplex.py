"""QPLEX (Wang et al. 2021, "QPLEX: Duplex Dueling Multi-Agent Q-Learning"): a non-monotonic mixer
whose greedy joint action is always the agents' own greedy actions (IGM).

Duplex dueling, for agent values ``Q_i(tau_i, a_i)`` and state ``s``:

1. transformation: ``Q_i' = w_i(s) Q_i + b_i(s)`` with ``w_i(s) > 0``, so ``V_i' = w_i V_i + b_i`` and
   ``A_i' = w_i (Q_i - V_i)``, where ``V_i = max`` of ``Q_i`` over agent ``i``'s AVAILABLE actions;
2. dueling mixing: ``Q_tot = sum_i V_i' + sum_i lambda_i(s, a) A_i'`` with ``lambda_i > 0``.

Every ``A_i' <= 0``, with 0 exactly at agent ``i``'s greedy action, and ``lambda_i > 0``: the joint greedy
action maximises ``Q_tot`` (IGM), while ``lambda`` depending on the joint action lets ``Q_tot`` take
non-monotonic shapes (QTRAN's game). ``lambda_i`` is a sum over ``attention_heads`` heads, each the
product of a positive state key ``|k_h(s)|``, a per-agent state gate ``sigmoid(g_h(s))_i`` and a per-agent
joint-action gate ``sigmoid(u_h(s, a))_i`` (the structure of pymarl's ``DMAQ_SI_Weight``, with two-layer
networks). The joint action enters as every agent's action index in binary (``action_bits`` bits per
agent) instead of pymarl's one-hot, so the mixer is built from ``(n_agents, state_dim)`` alone, as every
registered mixer is; indices must be below ``2 ** action_bits``.

The mixer asks the loss for ``extra_inputs``: the chosen actions, all actions' Q-values and the action
mask (see :data:`~marl_torchrl.modules.mixers.base.MIXER_INPUTS`); they can also be passed positionally,
so a ``TensorDictModule`` with those in_keys drops it into torchrl's ``QMixerLoss``.

>>> import torch
>>> mixer = QPLEXMixer(n_agents=2, state_dim=5)
>>> q = torch.randn(4, 2, 3)
>>> actions = torch.randint(3, (4, 2, 1))
>>> mixer(q.gather(-1, actions), torch.randn(4, 5), actions=actions, action_values=q).shape
torch.Size([4, 1])
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from marl_torchrl.modules.mixers.base import StateMixer, resolve_state_dim
from marl_torchrl.registry import MIXERS, ConfigError

__all__ = ["QPLEXMixer", "build_qplex"]


def _mlp(in_dim: int, hidden: int, out_dim: int, device: Any) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden, device=device), nn.ReLU(), nn.Linear(hidden, out_dim, device=device))


class QPLEXMixer(StateMixer):
    """``Q_tot = sum_i (w_i(s) V_i + b_i(s)) + sum_i lambda_i(s, a) w_i(s) (Q_i - V_i)``.

    Args:
        n_agents: number of agents ``A``.
        state_dim: size ``S`` of the flat global state (or torchrl's ``state_shape``).
        mixing_embed_dim: hidden width of the bias network ``b(s)`` (pymarl: 32).
        hypernet_embed: hidden width of the weight network ``w(s)`` and of the ``lambda`` heads (pymarl: 64).
        attention_heads: number of ``lambda`` heads (pymarl's ``num_kernel``: 4).
        action_bits: bits per agent of the joint-action code (action indices below ``2 ** action_bits``).
        detach_advantage: write ``Q_tot`` as ``sum_i Q_i' + sum_i (lambda_i - 1) A_i'`` with the advantages
            ``A_i'`` held constant (the reference implementation's ``is_minus_one`` form): the same value, but
            each ``Q_i`` learns through the sum, as in VDN with weights ``w_i(s)``, and ``lambda`` alone fits
            the non-monotonic rest. False: gradient also flows through ``V_i`` and ``A_i'``.
        state_shape: torchrl's keyword for the state size (flat states only).
        device: torch device of the parameters.

    ``forward(q [*B, A, 1], state [*B, S], actions [*B, A, 1], action_values [*B, A, n], action_mask=None)``
    returns ``[*B, 1]``.

    >>> import torch
    >>> mixer = QPLEXMixer(n_agents=2, state_dim=4, attention_heads=2)
    >>> q, state = torch.randn(8, 2, 3), torch.randn(8, 4)
    >>> greedy = q.argmax(-1, keepdim=True)
    >>> v_tot = mixer(q.gather(-1, greedy), state, greedy, q)  # at the greedy joint action
    >>> other = mixer(q.gather(-1, (greedy + 1) % 3), state, (greedy + 1) % 3, q)
    >>> bool((v_tot >= other).all())
    True
    >>> QPLEXMixer(2, 4, attention_heads=0)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: qplex mixer attention_heads must be >= 1, got 0
    """

    extra_inputs = ("actions", "action_values", "action_mask")

    def __init__(
        self,
        n_agents: int,
        state_dim: int | None = None,
        mixing_embed_dim: int = 32,
        hypernet_embed: int = 64,
        attention_heads: int = 4,
        action_bits: int = 8,
        detach_advantage: bool = True,
        state_shape: Any = None,
        device: Any = None,
    ):
        for name, value in (("mixing_embed_dim", mixing_embed_dim), ("hypernet_embed", hypernet_embed),
                            ("attention_heads", attention_heads), ("action_bits", action_bits)):
            if int(value) < 1:
                raise ConfigError(f"qplex mixer {name} must be >= 1, got {value}")
        S = resolve_state_dim("qplex", state_dim, state_shape)
        super().__init__(n_agents=int(n_agents), needs_state=True, state_shape=torch.Size([S]), device=device)
        A, E, H, K = self.n_agents, int(mixing_embed_dim), int(hypernet_embed), int(attention_heads)
        self.state_dim, self.embed_dim, self.hypernet_embed, self.heads, self.action_bits = S, E, H, K, int(action_bits)
        self.hyper_w = _mlp(S, H, A, device)  # w_i(s) = |.| + eps > 0
        self.hyper_b = _mlp(S, E, A, device)  # b_i(s)
        self.head_key = _mlp(S, H, K, device)  # |k_h(s)|
        self.head_agent = _mlp(S, H, K * A, device)  # sigmoid(g_h(s))_i
        self.head_action = _mlp(S + A * self.action_bits, H, K * A, device)  # sigmoid(u_h(s, a))_i
        self.detach_advantage = bool(detach_advantage)
        self.register_buffer("_bit_values", 2 ** torch.arange(self.action_bits, device=device), persistent=False)

    def action_code(self, actions: torch.Tensor) -> torch.Tensor:
        """Joint action indices ``[*B, A, 1]`` as ``[*B, A * action_bits]`` bits.

        >>> QPLEXMixer(2, 3, action_bits=3).action_code(torch.tensor([[[1], [6]]])).tolist()
        [[1.0, 0.0, 0.0, 0.0, 1.0, 1.0]]
        """
        idx = actions.long()
        if (idx >= 2 ** self.action_bits).any() or (idx < 0).any():
            raise ValueError(f"QPLEXMixer: action indices must be in [0, {2 ** self.action_bits}); raise action_bits")
        return ((idx & self._bit_values) > 0).float().flatten(-2)

    def weights(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The transformation: ``w(s)`` ``[*B, A]`` (positive) and ``b(s)`` ``[*B, A]``."""
        return self.hyper_w(state).abs() + 1e-10, self.hyper_b(state)

    def lambdas(self, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``lambda(s, a)`` ``[*B, A]``, positive: the sum over heads of key x agent gate x action gate."""
        key = self.head_key(state).abs() + 1e-10  # [*B, K]
        agent = torch.sigmoid(self.head_agent(state)).unflatten(-1, (self.heads, self.n_agents))  # [*B, K, A]
        joint = torch.cat([state, self.action_code(actions)], dim=-1)
        action = torch.sigmoid(self.head_action(joint)).unflatten(-1, (self.heads, self.n_agents))  # [*B, K, A]
        return (key.unsqueeze(-1) * agent * action).sum(-2)

    def forward(self, chosen_action_value, state, actions=None, action_values=None, action_mask=None):
        if actions is None or action_values is None:
            raise ValueError("QPLEXMixer needs actions and action_values (all actions' Q-values) besides q and state")
        q = chosen_action_value
        if q.shape[-2:] != (self.n_agents, 1) or action_values.shape[-2] != self.n_agents:
            raise ValueError(f"QPLEXMixer expected chosen_action_value [*B, {self.n_agents}, 1] and action_values "
                             f"[*B, {self.n_agents}, n], got {tuple(q.shape)} and {tuple(action_values.shape)}")
        batch = q.shape[:-2]
        if actions.dim() == q.dim() - 1:  # [*B, A] indices, as torchrl's categorical action spaces store them
            actions = actions.unsqueeze(-1)
        if state.shape != (*batch, self.state_dim):
            raise ValueError(f"QPLEXMixer: state {tuple(state.shape)} does not match batch dims {tuple(batch)} "
                             f"and state_dim {self.state_dim}")
        values = action_values
        if action_mask is not None:  # V_i over available actions; an agent with none available counts all
            mask = action_mask.bool()
            values = values.masked_fill(~(mask | ~mask.any(-1, keepdim=True)), float("-inf"))
        v = values.max(-1).values  # [*B, A]
        w, b = self.weights(state)
        adv = w * (q.squeeze(-1) - v)  # A_i' <= 0 at available actions
        lam = self.lambdas(state, actions)
        if self.detach_advantage:  # the same value, as sum_i Q_i' + sum_i (lambda_i - 1) A_i' with A' a constant
            return (w * q.squeeze(-1) + b).sum(-1, keepdim=True) + ((lam - 1.0) * adv.detach()).sum(-1, keepdim=True)
        return (w * v + b).sum(-1, keepdim=True) + (lam * adv).sum(-1, keepdim=True)

    def extra_repr(self) -> str:
        return (f"n_agents={self.n_agents}, state_dim={self.state_dim}, embed_dim={self.embed_dim}, "
                f"hypernet_embed={self.hypernet_embed}, attention_heads={self.heads}, action_bits={self.action_bits}")


#: ``build_qplex(n_agents, state_dim, **options)``, registered as mixer ``"qplex"``; unknown options are a ``ConfigError``.
build_qplex = MIXERS.register_class(
    "qplex", QPLEXMixer,
    ("device", "mixing_embed_dim", "hypernet_embed", "attention_heads", "action_bits", "detach_advantage"))
