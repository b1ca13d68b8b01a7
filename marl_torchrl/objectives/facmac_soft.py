"""FACMAC with a stochastic actor and SAC's entropy bonus (``algorithm.stochastic_actor=true``).

The same critic, mixer and centralised policy gradient as :class:`~marl_torchrl.objectives.facmac.FACMACLoss`,
with two changes, both SAC's (Haarnoja et al. 2018), and a third term:

1. targets: the target actor *samples* the next joint action (a categorical among available actions, or
   a tanh-squashed normal), and the target value is the (twin-minimum) mixed value minus
   ``alpha * sum_i log pi_i(a'_i)``: a soft value;
2. ``loss_actor``: every agent's action is sampled from the current actor at once (straight-through
   Gumbel-Softmax, or the reparameterised squashed normal), and the actor minimises
   ``alpha * sum_i log pi_i - Q_tot`` (discrete actions take each agent's exact ``E[log pi_i]``); the
   continuous regularisers apply to the mean;
3. ``loss_alpha`` moves the temperature toward ``target_entropy`` per agent (when learned).

With independent critics (no mixer) each agent's own ``Q_i`` carries its own entropy term. The actor's
raw output is the logits (discrete) or the mean and log-std (continuous, ``2d``).

>>> import torch
>>> from marl_torchrl.data.synthetic import random_sequences
>>> from marl_torchrl.modules import SharedAgentNet, VDNMixer
>>> from marl_torchrl.modules.actors import TanhBounded
>>> from marl_torchrl.modules.critics import AgentActionCritic
>>> bound = TanhBounded(-torch.ones(2, 3), torch.ones(2, 3))
>>> loss = SoftFACMACLoss(SharedAgentNet(3, 2, 6), AgentActionCritic(3, 3, 2, discrete=False), VDNMixer(2, 'cpu'),
...                       bound=bound)
>>> batch = random_sequences(batch=2, seq_len=4, n_agents=2, obs_dim=3, n_actions=3, state_dim=6, hidden_dim=64)
>>> batch["agents", "action"] = torch.rand(2, 5, 2, 3) * 2 - 1  # continuous actions [B, L + 1, A, d]
>>> out = loss(batch)
>>> sorted(k for k in out.keys() if k.startswith("loss")), round(float(out["alpha"]), 3)
(['loss_actor', 'loss_alpha', 'loss_qvalue'], 0.01)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from marl_torchrl.modules.actors import gumbel_softmax_st, masked_logits
from marl_torchrl.modules.stochastic import masked_log_probs, squashed_normal_sample
from marl_torchrl.objectives.facmac import FACMACLoss
from marl_torchrl.objectives.sequence_ops import masked_mean
from marl_torchrl.objectives.temperature import add_temperature, temperature_loss
from marl_torchrl.registry import ConfigError


class SoftFACMACLoss(FACMACLoss):
    """FACMAC's ``loss_qvalue`` and ``loss_actor`` with a stochastic actor and SAC's entropy, plus ``loss_alpha``.

    Args:
        actor: shared agent network giving logits (discrete) or mean and log-std (continuous, ``2d``).
        critic, mixer, n_actions, bound, gamma, td_lambda, gumbel_temperature, action_reg, preact_reg,
        burn_in, twin_critic, twin_mixer, policy_delay: as in :class:`~marl_torchrl.objectives.facmac.FACMACLoss`
            (``target_noise`` is refused: the targets sample the policy already).
        alpha_init, learn_alpha, target_entropy: the temperature (see
            :func:`~marl_torchrl.objectives.temperature.add_temperature`).

    >>> from marl_torchrl.modules import SharedAgentNet
    >>> from marl_torchrl.modules.critics import AgentActionCritic
    >>> SoftFACMACLoss(SharedAgentNet(3, 2, 4), AgentActionCritic(3, 4, 2), None, n_actions=4, alpha_init=0.0)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: FACMAC's temperature alpha_init must be > 0, got 0.0
    """

    def __init__(self, actor: nn.Module, critic: nn.Module, mixer: nn.Module | None, *, alpha_init: float = 0.01,
                 learn_alpha: bool = True, target_entropy: float | None = None, **kwargs):
        if kwargs.get("target_noise"):
            raise ConfigError("target_noise (TD3's smoothing) needs a deterministic actor")
        super().__init__(actor, critic, mixer, **kwargs)
        add_temperature(self, alpha_init=alpha_init, learn_alpha=learn_alpha, target_entropy=target_entropy,
                        n_actions=self.n_actions, action_dim=None if self.discrete else self.bound.centre.shape[-1])

    def _sample(self, raw: torch.Tensor, avail: torch.Tensor | None, *, relaxed: bool):
        """A joint action sample (one-hot or bounded) and each agent's log-probability ``[B, L, A]``
        (discrete with ``relaxed``: straight-through Gumbel-Softmax and the exact ``E[log pi_i]``)."""
        if not self.discrete:
            return squashed_normal_sample(raw, self.bound)
        log_p = masked_log_probs(raw, avail)
        if relaxed:
            return gumbel_softmax_st(raw, self.gumbel_temperature, avail), (log_p.exp() * log_p).sum(-1)
        index = torch.distributions.Categorical(logits=masked_logits(raw, avail)).sample()
        return F.one_hot(index, self.n_actions).to(raw.dtype), log_p.gather(-1, index.unsqueeze(-1)).squeeze(-1)

    def _entropy_cost(self, log_pi: torch.Tensor) -> torch.Tensor:
        """``alpha * log pi`` shaped like the mixed values: summed over agents, or per agent without a mixer."""
        cost = self.log_alpha.exp().detach() * log_pi
        return cost if self.mixer is None else cost.sum(-1, keepdim=True)

    def _next_value(self, raw_next: torch.Tensor, obs_next: torch.Tensor, b) -> torch.Tensor:
        action, log_pi = self._sample(raw_next, b.avail_next, relaxed=False)
        return self._min_target_value(obs_next, action, b) - self._entropy_cost(log_pi)

    def _actor_term(self, raw: torch.Tensor, obs: torch.Tensor, b):
        action, log_pi = self._sample(raw, b.avail_now, relaxed=True)
        q_tot_pi = self._policy_value(obs, action, b)
        loss_actor = masked_mean(self._entropy_cost(log_pi) - q_tot_pi, b.valid)
        extra = {"alpha": self.log_alpha.exp().detach(), "entropy": -masked_mean(log_pi.detach(), b.valid),
                 "loss_alpha": temperature_loss(self, log_pi, b.valid)}
        if not self.discrete:
            loss_actor, regularisers = self._regularise(loss_actor, raw.chunk(2, dim=-1)[0], b.valid.unsqueeze(-1))
            extra.update(regularisers)
        return loss_actor, q_tot_pi, extra
