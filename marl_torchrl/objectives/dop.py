"""DOP with soft actor-critic: twin linearly decomposed critics and stochastic agents, over sequences.

For ``B`` sequences of ``L`` transitions (``L + 1`` observation slots), read top to bottom:

1. the stochastic actor unrolls over all slots from the stored start state (burn-in without gradient);
   each critic's shared recurrent trunk unrolls over the agents' own observation histories;
2. critics: for each of the two critics ``j``, ``Q_tot^j(s, a) = sum_i k^j_i(s) Q^j_i(tau_i, a_i) + b^j(s)``
   (:class:`~marl_torchrl.modules.mixers.dop.DOPMixer`) at the taken actions;
3. soft targets: the current policy at the next step, scored by both target critics and target mixers;
   the minimum of the two, minus ``alpha`` times the agents' summed log-probabilities. Discrete actions
   take exact expectations over the policy (``Q_tot`` is linear in each ``Q_i`` and the agents act
   independently); continuous ones a reparameterised sample. TD(lambda) or 1-step;
4. ``loss_qvalue``: both critics' squared errors against the same targets (critics + mixers);
5. ``loss_actor``, decomposed: each agent improves against ``min_j k^j_i(s) Q^j_i(tau_i, a_i)`` with an
   entropy bonus, so agent ``i``'s gradient never needs the other agents' fresh actions; critic and
   mixer enter with detached parameters;
6. ``loss_alpha``: the temperature moves toward the per-agent target entropy (when learned).

>>> import torch
>>> from marl_torchrl.data.synthetic import random_sequences
>>> from marl_torchrl.modules import DOPMixer, SharedAgentNet
>>> from marl_torchrl.modules.critics import HistoryCritic
>>> critics = [HistoryCritic(3, 4, 2, discrete=True, hidden_dim=8) for _ in range(2)]
>>> loss = DOPSACLoss(SharedAgentNet(3, 2, 4, hidden_dim=8), critics, [DOPMixer(2, 6), DOPMixer(2, 6)], n_actions=4)
>>> out = loss(random_sequences(batch=5, seq_len=6, n_agents=2, obs_dim=3, n_actions=4, state_dim=6, hidden_dim=8))
>>> sorted(k for k in out.keys() if k.startswith("loss"))
['loss_actor', 'loss_alpha', 'loss_qvalue']
"""
from __future__ import annotations

from typing import Sequence

import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

from marl_torchrl.modules.actors import TanhBounded
from marl_torchrl.modules.stochastic import masked_log_probs, squashed_normal_sample
from marl_torchrl.objectives.sequence_batch import ActionSpace
from marl_torchrl.objectives.sequence_ops import SequenceLoss, call_detached, masked_mean, mix_values, unroll_with_burn_in
from marl_torchrl.objectives.targets import lambda_returns
from marl_torchrl.objectives.temperature import add_temperature, temperature_loss
from marl_torchrl.registry import ConfigError


class DOPSACLoss(ActionSpace, SequenceLoss):
    """DOP-SAC's ``loss_actor``, ``loss_qvalue`` and ``loss_alpha``.

    Args:
        actor: shared agent network (GRU or MLP): logits (discrete) or mean and log-std (continuous, ``2d``).
        critics: two :class:`~marl_torchrl.modules.critics.HistoryCritic` (separate parameters).
        mixers: two :class:`~marl_torchrl.modules.mixers.dop.DOPMixer`, one per critic.
        n_actions: number of discrete actions, or None for continuous actions with ``bound``.
        bound: :class:`~marl_torchrl.modules.actors.TanhBounded` of continuous actions.
        gamma, td_lambda: discount and TD(lambda) (0 = 1-step targets).
        alpha_init: initial temperature (> 0); ``learn_alpha`` tunes it toward ``target_entropy`` (per
            agent; None = ``-d`` for continuous actions, ``0.5 log(n_actions)`` for discrete ones).
        burn_in: steps without gradient at the start of sequences that begin mid-episode.

    >>> from marl_torchrl.modules import DOPMixer, SharedAgentNet
    >>> from marl_torchrl.modules.critics import HistoryCritic
    >>> critics = [HistoryCritic(3, 4, 2, discrete=True) for _ in range(2)]
    >>> DOPSACLoss(SharedAgentNet(3, 2, 4), critics, [DOPMixer(2, 6), DOPMixer(2, 6)], n_actions=4, alpha_init=-0.1)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: DOP's temperature alpha_init must be > 0, got -0.1
    """

    algorithm = "DOP"
    target_names = (("critics", "critics_target"), ("mixers", "mixers_target"))  # the actor has no target

    def __init__(
        self,
        actor: nn.Module,
        critics: Sequence[nn.Module],
        mixers: Sequence[nn.Module],
        *,
        n_actions: int | None = None,
        bound: TanhBounded | None = None,
        gamma: float = 0.99,
        td_lambda: float = 0.0,
        alpha_init: float = 0.1,
        learn_alpha: bool = True,
        target_entropy: float | None = None,
        burn_in: int = 0,
        standardise_rewards: bool = False,
        reward_scale: float = 1.0,
    ):
        super().__init__(gamma=gamma, td_lambda=td_lambda, burn_in=burn_in, standardise_rewards=standardise_rewards,
                         reward_scale=reward_scale)
        self.set_action_space(n_actions=n_actions, bound=bound)
        if len(critics) != 2 or len(mixers) != 2 or critics[0] is critics[1] or mixers[0] is mixers[1]:
            raise ConfigError("DOP needs two critics and two mixers with separate parameters")
        for mixer in mixers:  # mixed values are expectations over the policy: no single joint action
            self.check_mixer_inputs(mixer, ("observations",))
        self.actor = actor
        self.critics, self.mixers = nn.ModuleList(critics), nn.ModuleList(mixers)
        self.make_targets()
        add_temperature(self, alpha_init=alpha_init, learn_alpha=learn_alpha, target_entropy=target_entropy,
                        n_actions=n_actions, action_dim=None if bound is None else bound.centre.shape[-1])

    def _q_taken(self, critic, mixer, features, action, state, obs) -> torch.Tensor:
        """``Q_tot`` ``[B, L, 1]`` of the replayed actions."""
        if self.discrete:
            q = critic.values(features).gather(-1, action.long().unsqueeze(-1))
        else:
            q = critic.values(features, action)
        return mix_values(mixer, q, state, observations=obs)

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        b = self.read_batch(td, self.actor, action_mask=self.discrete)
        obs, state, action, avail, valid = b.obs, b.state, b.action, b.avail, b.valid  # [B, L+1, A, F], [B, L+1, S]
        h0, reward, terminated = b.h0, b.reward, b.terminated
        alpha = self.log_alpha.exp().detach()

        # 1. actor and critic trunks over the whole sequence
        raw = unroll_with_burn_in(self.actor, obs, h0, self.burn_in, b.is_init)  # [B, L+1, A, n or 2d]
        feats = [c.features(obs) for c in self.critics]
        with torch.no_grad():
            feats_target = [c.features(obs) for c in self.critics_target]

        # 2-4. both critics toward the same soft targets
        q_taken = [self._q_taken(c, m, f[:, :-1], action, state[:, :-1], obs[:, :-1]) for c, m, f in zip(self.critics, self.mixers, feats)]
        with torch.no_grad():
            next_value = self._soft_next_value(raw[:, 1:].detach(), feats_target, state[:, 1:], obs[:, 1:], avail, alpha)
            target = lambda_returns(reward, terminated, valid, next_value, gamma=self.gamma, lam=self.td_lambda)
        loss_qvalue = sum(masked_mean((q - target).pow(2), valid) for q in q_taken)

        # 5-6. decomposed actor update; temperature
        with torch.no_grad():
            k_now = [m.weights(state[:, :-1])[0].unsqueeze(-1) for m in self.mixers]  # [B, L, A, 1] each
        raw_now = raw[:, :-1]
        if self.discrete:
            log_p = masked_log_probs(raw_now, None if avail is None else avail[:, :-1])  # [B, L, A, n]
            with torch.no_grad():
                q_min = torch.minimum(*(kj * c.values(f[:, :-1]) for kj, c, f in zip(k_now, self.critics, feats)))
            per_agent = (log_p.exp() * (alpha * log_p - q_min)).sum(-1)  # [B, L, A]
            log_pi = (log_p.exp() * log_p).sum(-1).detach()  # E[log pi] = -entropy
        else:
            a, log_pi = squashed_normal_sample(raw_now, self.bound)
            q_min = torch.minimum(*(kj * call_detached(c, f[:, :-1].detach(), a)
                                    for kj, c, f in zip(k_now, self.critics, feats)))
            per_agent = alpha * log_pi - q_min.squeeze(-1)
            log_pi = log_pi.detach()
        loss_actor = masked_mean(per_agent, valid)
        return TensorDict(
            {
                "loss_actor": loss_actor,
                "loss_qvalue": loss_qvalue,
                "loss_alpha": temperature_loss(self, log_pi, valid),
                "alpha": alpha,
                "entropy": -masked_mean(log_pi, valid),
                "td_error": masked_mean((q_taken[0] - target).abs(), valid).detach(),
                "q_value": masked_mean(torch.minimum(*q_taken), valid).detach(),
                "target_value": masked_mean(target, valid).detach(),
                "mixing_weight": masked_mean(k_now[0].squeeze(-1), valid),
            },
            batch_size=[],
        )

    def _soft_next_value(self, raw_next, feats_target, state_next, obs_next, avail, alpha) -> torch.Tensor:
        """``min_j Q_tot^j(s', a') - alpha * sum_i log pi_i(a'_i)`` at the policy's next actions ``[B, L, 1]``."""
        q_next = []
        if self.discrete:
            log_p = masked_log_probs(raw_next, None if avail is None else avail[:, 1:])
            p = log_p.exp()
            for c, m, f in zip(self.critics_target, self.mixers_target, feats_target):
                expected = (p * c.values(f[:, 1:])).sum(-1, keepdim=True)  # E_pi[Q_i] [B, L, A, 1]
                q_next.append(mix_values(m, expected, state_next, observations=obs_next))
            log_pi = (p * log_p).sum(-1)  # [B, L, A]
        else:
            a_next, log_pi = squashed_normal_sample(raw_next, self.bound)
            for c, m, f in zip(self.critics_target, self.mixers_target, feats_target):
                q_next.append(mix_values(m, c.values(f[:, 1:], a_next), state_next, observations=obs_next))
        return torch.minimum(*q_next) - alpha * log_pi.sum(-1, keepdim=True)
