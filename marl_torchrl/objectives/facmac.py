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
from marl_torchrl.objectives.sequence_batch import ActionSpace
from marl_torchrl.objectives.sequence_ops import SequenceLoss, call_detached, masked_mean, mix_values, unroll_with_burn_in
from marl_torchrl.objectives.targets import lambda_returns
from marl_torchrl.registry import ConfigError


class FACMACLoss(ActionSpace, SequenceLoss):
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

    algorithm = "FACMAC"
    target_names = (("actor", "actor_target"), ("critic", "critic_target"), ("mixer", "mixer_target"))

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
        standardise_rewards: bool = False,
    ):
        super().__init__(gamma=gamma, td_lambda=td_lambda, burn_in=burn_in, standardise_rewards=standardise_rewards)
        self.set_action_space(n_actions=n_actions, bound=bound)
        if not gumbel_temperature > 0 or action_reg < 0:
            raise ConfigError(f"need gumbel_temperature > 0 and action_reg >= 0, got {gumbel_temperature}, {action_reg}")
        # a critic scores the actions it is given: no values of all actions; indices only for discrete ones
        self.check_mixer_inputs(mixer, ("observations", "actions", "action_mask") if self.discrete else ("observations",))
        self.actor, self.critic, self.mixer = actor, critic, mixer
        self.make_targets()
        self.gumbel_temperature, self.action_reg = float(gumbel_temperature), float(action_reg)

    def _encode(self, action: torch.Tensor) -> torch.Tensor:
        """Replayed actions as critic inputs: one-hot (discrete) or as they are (continuous)."""
        return F.one_hot(action.long(), self.n_actions).float() if self.discrete else action.float()

    def _policy_action(self, raw: torch.Tensor, avail: torch.Tensor | None, *, sample: bool) -> torch.Tensor:
        if not self.discrete:
            return self.bound(raw)
        if sample:
            return gumbel_softmax_st(raw, self.gumbel_temperature, avail)
        return greedy_one_hot(raw, avail)

    def _mixer_inputs(self, obs: torch.Tensor, action: torch.Tensor, avail) -> dict:
        """The extra inputs a mixer may ask of FACMAC (see ``check_mixer_inputs`` in ``__init__``)."""
        if not self.discrete:
            return {"observations": obs}
        return {"observations": obs, "actions": action.argmax(-1, keepdim=True), "action_mask": avail}

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        b = self.read_batch(td, self.actor, action_mask=self.discrete)
        obs, h0, valid, state_now = b.obs, b.h0, b.valid, b.state_now  # obs [B, L+1, A, F]
        action = self._encode(b.action)  # [B, L, A, n or d]

        # 1-3. critic towards targets from the target actor, critic and mixer
        q_taken = mix_values(self.mixer, self.critic(obs[:, :-1], action), state_now,
                             **self._mixer_inputs(obs[:, :-1], action, b.avail_now))
        with torch.no_grad():
            raw_target, _ = self.actor_target.unroll(obs, h0)
            next_action = self._policy_action(raw_target[:, 1:], b.avail_next, sample=False)
            next_q = self.critic_target(obs[:, 1:], next_action)
            next_value = mix_values(self.mixer_target, next_q, b.state_next,
                                    **self._mixer_inputs(obs[:, 1:], next_action, b.avail_next))
            target = lambda_returns(b.reward, b.terminated, valid, next_value, gamma=self.gamma, lam=self.td_lambda)
        err = q_taken - target
        loss_qvalue = masked_mean(err.pow(2), valid)

        # 4. centralised policy gradient: every agent's action from the current actor at once
        raw = unroll_with_burn_in(self.actor, obs[:, :-1], h0, self.burn_in, b.is_init)  # [B, L, A, n or d]
        pi = self._policy_action(raw, b.avail_now, sample=True)
        q_tot_pi = mix_values(self.mixer, call_detached(self.critic, obs[:, :-1], pi), state_now, detached=True,
                              **self._mixer_inputs(obs[:, :-1], pi, b.avail_now))
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
