"""FACMAC (Peng et al. 2021): factored multi-agent centralised policy gradients, over sequences.

For a batch of ``B`` sequences of ``L`` transitions (``L + 1`` observation slots), read top to bottom:

1. critic: each agent's ``Q_i(o_i, a_i)`` at the taken actions, mixed with the state into ``Q_tot``;
2. target: the target actor unrolls over the same observations from the same start state and plays
   its greedy action (discrete: one-hot argmax among available actions; continuous: the bounded
   deterministic action); the target critic and target mixer score it; TD(lambda) or 1-step targets,
   truncated steps bootstrap and terminated steps do not;
3. ``loss_qvalue``: squared TD error over valid transitions; it trains critic and mixer;
4. ``loss_actor``: the online actor unrolls (burn-in steps without gradient) and ALL agents' actions
   come from it at once (discrete: straight-through Gumbel-Softmax among available actions;
   continuous: bounded deterministic actions); ``-Q_tot`` through the critic and mixer, whose
   parameters are detached so this term trains the actor alone; continuous actors add
   ``action_reg * mean(tanh(raw)^2)``.

>>> import torch
>>> from marl_torchrl.data.synthetic import random_sequences
>>> from marl_torchrl.modules import SharedAgentNet, NonMonotonicMixer
>>> from marl_torchrl.modules.critics import AgentActionCritic
>>> loss = FACMACLoss(SharedAgentNet(3, 2, 4, hidden_dim=8), AgentActionCritic(3, 4, 2, discrete=True, hidden_dim=8),
...                   NonMonotonicMixer(2, 6, mixing_embed_dim=8), n_actions=4)
>>> out = loss(random_sequences(batch=5, seq_len=6, n_agents=2, obs_dim=3, n_actions=4, state_dim=6, hidden_dim=8))
>>> sorted(k for k in out.keys() if k.startswith("loss"))
['loss_actor', 'loss_qvalue']
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from tensordict import TensorDict, TensorDictBase
from torch import nn

from marl_torchrl.modules.actors import TanhBounded, greedy_one_hot, gumbel_softmax_st
from marl_torchrl.objectives.sequence_ops import (
    SequenceLoss, call_detached, drop_burn_in, masked_mean, mix_values, unroll_with_burn_in,
)
from marl_torchrl.objectives.targets import frozen_copy, lambda_returns
from marl_torchrl.registry import ConfigError


class FACMACLoss(SequenceLoss):
    """FACMAC's critic and actor losses, returned as ``loss_qvalue`` and ``loss_actor``.

    Args:
        actor: shared agent network (GRU or MLP) giving logits (discrete) or raw actions (continuous).
        critic: a per-agent critic ``Q_i(o_i, a_i)`` such as
            :class:`~marl_torchrl.modules.critics.AgentActionCritic`.
        mixer: any torchrl ``Mixer`` (non-monotonic, QMIX, VDN...), or None for independent critics.
        n_actions: number of discrete actions; leave None for continuous actions and give ``bound``.
        bound: :class:`~marl_torchrl.modules.actors.TanhBounded` mapping raw outputs to actions.
        gamma, td_lambda: discount and TD(lambda) (0 = 1-step targets).
        gumbel_temperature: temperature of the straight-through Gumbel-Softmax (discrete).
        action_reg: weight of ``mean(tanh(raw)^2)`` in the actor loss (continuous).
        burn_in: steps without gradient at the start of sequences that begin mid-episode.

    Keys are renamable with ``set_keys`` (observation, state, action, action_mask, reward,
    terminated, mask, is_init, hidden).

    >>> from marl_torchrl.modules import SharedAgentNet
    >>> from marl_torchrl.modules.critics import AgentActionCritic
    >>> FACMACLoss(SharedAgentNet(3, 2, 4), AgentActionCritic(3, 4, 2), None)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: FACMAC needs either n_actions (discrete) or bound (continuous actions)
    """


    def __init__(
        self,
        actor: nn.Module,
        critic: nn.Module,
        mixer: nn.Module | None,
        *,
        n_actions: int | None = None,
        bound: TanhBounded | None = None,
        gamma: float = 0.99,
        td_lambda: float = 0.8,
        gumbel_temperature: float = 1.0,
        action_reg: float = 1e-3,
        burn_in: int = 0,
    ):
        super().__init__(gamma=gamma, td_lambda=td_lambda, burn_in=burn_in)
        if (n_actions is None) == (bound is None):
            raise ConfigError("FACMAC needs either n_actions (discrete) or bound (continuous actions)")
        if not gumbel_temperature > 0 or action_reg < 0:
            raise ConfigError(f"need gumbel_temperature > 0 and action_reg >= 0, got {gumbel_temperature}, {action_reg}")
        self.actor, self.critic, self.mixer, self.bound = actor, critic, mixer, bound
        self.actor_target, self.critic_target = frozen_copy(actor), frozen_copy(critic)
        self.mixer_target = frozen_copy(mixer) if mixer is not None else None
        self.n_actions = n_actions
        self.gumbel_temperature, self.action_reg = float(gumbel_temperature), float(action_reg)

    @property
    def discrete(self) -> bool:
        return self.n_actions is not None

    def target_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """``(online, target)`` pairs for a :class:`~marl_torchrl.objectives.targets.TargetUpdater`."""
        pairs = [(self.actor, self.actor_target), (self.critic, self.critic_target)]
        if self.mixer is not None:
            pairs.append((self.mixer, self.mixer_target))
        return pairs

    def _encode(self, action: torch.Tensor) -> torch.Tensor:
        """Replayed actions as critic inputs: one-hot (discrete) or as they are (continuous)."""
        return F.one_hot(action.long(), self.n_actions).float() if self.discrete else action.float()

    def _policy_action(self, raw: torch.Tensor, avail: torch.Tensor | None, *, sample: bool) -> torch.Tensor:
        if not self.discrete:
            return self.bound(raw)
        if sample:
            return gumbel_softmax_st(raw, self.gumbel_temperature, avail)
        return greedy_one_hot(raw, avail)

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        k = self.tensor_keys
        obs = td.get(k.observation)  # [B, L+1, A, F]
        action = self._encode(td.get(k.action)[:, :-1])  # [B, L, A, n or d]
        reward = td.get(k.reward)[:, :-1].float()  # [B, L, 1]
        terminated = td.get(k.terminated)[:, :-1].float()
        state = td.get(k.state, None)
        state_now, state_next = (None, None) if state is None else (state[:, :-1], state[:, 1:])
        avail = td.get(k.action_mask, None) if self.discrete else None
        h0 = td.get(k.hidden, None) if getattr(self.actor, "rnn", False) else None
        is_init = td.get(k.is_init)[:, 0].reshape(-1)
        valid = drop_burn_in(td.get(k.mask)[:, :-1].float(), is_init, self.burn_in if h0 is not None else 0)

        # 1-3. critic towards targets from the target actor, critic and mixer
        q_taken = mix_values(self.mixer, self.critic(obs[:, :-1], action), state_now)
        with torch.no_grad():
            raw_target, _ = self.actor_target.unroll(obs, h0)
            next_action = self._policy_action(raw_target[:, 1:], None if avail is None else avail[:, 1:], sample=False)
            next_q = self.critic_target(obs[:, 1:], next_action)
            next_value = mix_values(self.mixer_target, next_q, state_next)
            target = lambda_returns(reward, terminated, valid, next_value, gamma=self.gamma, lam=self.td_lambda)
        err = q_taken - target
        loss_qvalue = masked_mean(err.pow(2), valid)

        # 4. centralised policy gradient: every agent's action from the current actor at once
        raw = unroll_with_burn_in(self.actor, obs[:, :-1], h0, self.burn_in)  # [B, L, A, n or d]
        pi = self._policy_action(raw, None if avail is None else avail[:, :-1], sample=True)
        q_tot_pi = mix_values(self.mixer, call_detached(self.critic, obs[:, :-1], pi), state_now, detached=True)
        loss_actor = -masked_mean(q_tot_pi, valid)
        if not self.discrete and self.action_reg:
            loss_actor = loss_actor + self.action_reg * masked_mean(self.bound.normalised(raw).pow(2), valid.unsqueeze(-1))

        return TensorDict(
            {
                "loss_actor": loss_actor,
                "loss_qvalue": loss_qvalue,
                "td_error": masked_mean(err.abs(), valid).detach(),
                "q_value": masked_mean(q_taken, valid).detach(),
                "q_value_policy": masked_mean(q_tot_pi, valid).detach(),
                "target_value": masked_mean(target, valid).detach(),
            },
            batch_size=[],
        )
