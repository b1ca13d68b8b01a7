"""Value-decomposition Q-learning over sequences: IQL (no mixer), VDN, QMIX and any other Mixer.

Read top to bottom, for a batch of ``B`` sequences of ``L`` transitions (``L + 1`` observation slots):

1. the online agent network unrolls over all ``L + 1`` observations from the stored start state
   (zero at an episode start); with ``burn_in`` steps, sequences that start mid-episode run their first
   ``burn_in`` steps without gradient and those steps leave the loss;
2. the target agent network unrolls over the same observations from the same start state;
3. chosen Q-values ``Q_i(o_t, a_t)`` are mixed with the state into ``Q_tot`` (IQL keeps one value per
   agent instead);
4. next values: each agent's greedy next action among its available actions, taken from the online
   network (double Q, default) or the target network, scored by the target network and target mixer
   (Weighted QMIX: by the target central ``Q*`` instead);
5. TD(lambda) or 1-step targets (:func:`~marl_torchrl.objectives.targets.lambda_returns`): truncated steps
   bootstrap, terminated steps do not;
6. the squared (or Huber) TD error, averaged over valid transitions only; Weighted QMIX weighs it per
   transition (:func:`~marl_torchrl.objectives.weighted.wqmix_weights`) and adds ``Q*``'s own squared
   error against the same targets.

>>> import torch
>>> from marl_torchrl.modules.agents import SharedAgentNet
>>> from torchrl.modules.models.multiagent import VDNMixer
>>> net = SharedAgentNet(obs_dim=3, n_agents=2, out_dim=4, hidden_dim=8)
>>> loss = ValueDecompositionLoss(net, VDNMixer(n_agents=2, device="cpu"), gamma=0.9)
>>> from marl_torchrl.data.synthetic import random_sequences
>>> out = loss(random_sequences(batch=5, seq_len=6, n_agents=2, obs_dim=3, n_actions=4, state_dim=6, hidden_dim=8))
>>> sorted(out.keys())
['agent_q_value', 'loss', 'q_value', 'target_value', 'td_error']
>>> out["loss"].backward()
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from tensordict import TensorDict, TensorDictBase
from torch import nn

from marl_torchrl.modules.mixers.base import MIXER_INPUTS
from marl_torchrl.objectives.sequence_ops import SequenceLoss, masked_mean, mix_values, unroll_with_burn_in
from marl_torchrl.objectives.targets import lambda_returns
from marl_torchrl.objectives.weighted import CentralQ, check_weighting, greedy_actions, wqmix_weights
from marl_torchrl.registry import ConfigError


class ValueDecompositionLoss(SequenceLoss):
    """Sequence Q-learning loss with an optional mixer (None = IQL).

    Args:
        agent_net: a :class:`~marl_torchrl.modules.agents.SharedAgentNet` producing Q-values.
        mixer: any torchrl ``Mixer`` (ours or torchrl's ``QMixer``/``VDNMixer``), or None for IQL.
        gamma: discount.
        td_lambda: 0 for 1-step targets, in (0, 1] for TD(lambda).
        double_q: pick next actions with the online network (default) instead of the target one.
        burn_in: steps without gradient at the start of sequences that begin mid-episode.
        loss_function: ``"l2"`` or ``"smooth_l1"``.
        central: Weighted QMIX's central :class:`~marl_torchrl.objectives.weighted.CentralQ` (``Q*``); when
            given, its target copy makes the targets and ``loss`` adds its squared error (``central_loss``).
        weighting: ``"ow"`` or ``"cw"`` (needs ``central`` and a mixer) to weigh the TD errors 1 or ``alpha``.
        alpha: the weight in ``(0, 1]`` of down-weighted transitions.
        standardise_rewards: train on standardised rewards
            (:class:`~marl_torchrl.objectives.reward_norm.RewardStandardiser`).
        reward_scale: train on the (standardised) rewards times this; Q-values are in these units.

    Keys are renamable with ``set_keys`` (observation, state, action, action_mask, reward, terminated,
    mask, is_init, hidden). The output holds ``loss`` and diagnostics (``td_error``, ``q_value``...; with
    a central ``Q*`` also ``central_loss`` and ``weight_mean``).

    >>> from marl_torchrl.modules.agents import SharedAgentNet
    >>> from marl_torchrl.modules.mixers import QMixer
    >>> net = SharedAgentNet(obs_dim=3, n_agents=2, out_dim=4, rnn=False)
    >>> loss = ValueDecompositionLoss(net, QMixer(n_agents=2, state_dim=6), td_lambda=0.6)
    >>> loss.set_keys(state="global_state")
    >>> loss.tensor_keys.state
    'global_state'
    """

    algorithm = "value-decomposition Q-learning"
    target_names = (("agent_net", "agent_net_target"), ("mixer", "mixer_target"), ("central", "central_target"))
    skip_unread_steps = True  # skip the steps nobody reads (False: unroll all; tests compare)

    def __init__(
        self,
        agent_net: nn.Module,
        mixer: nn.Module | None = None,
        *,
        gamma: float = 0.99,
        td_lambda: float = 0.0,
        double_q: bool = True,
        burn_in: int = 0,
        loss_function: str = "l2",
        central: CentralQ | None = None,
        weighting: str | None = None,
        alpha: float = 0.1,
        standardise_rewards: bool = False,
        reward_scale: float = 1.0,
    ):
        super().__init__(gamma=gamma, td_lambda=td_lambda, burn_in=burn_in, standardise_rewards=standardise_rewards,
                         reward_scale=reward_scale)
        if loss_function not in ("l2", "smooth_l1"):
            raise ConfigError(f"unknown loss_function '{loss_function}'; known: l2, smooth_l1")
        check_weighting(weighting, alpha, central, mixer)
        self.check_mixer_inputs(mixer, MIXER_INPUTS)  # Q-learning has every input a mixer may ask for
        self.agent_net, self.mixer, self.central = agent_net, mixer, central
        self.make_targets()
        self.double_q, self.loss_function = bool(double_q), loss_function
        self.weighting, self.alpha = weighting, float(alpha)

    def _unroll_online(self, obs: torch.Tensor, h0, is_init: torch.Tensor | None = None) -> torch.Tensor:
        """Online Q-values ``[B, L+1, A, n]``; burn-in steps of mid-episode sequences get no gradient."""
        return unroll_with_burn_in(self.agent_net, obs, h0, self.burn_in, is_init)

    @torch.no_grad()
    def _weights(self, q_taken, target, action, greedy, q_star_target, state) -> torch.Tensor:
        """Weighted QMIX's 1-or-alpha weights ``[B, L, 1]`` of QMIX's errors (all 1 without weighting)."""
        if self.weighting is None:
            return torch.ones_like(q_taken)
        is_greedy = (action == greedy).all(dim=-2)  # [B, L, 1]: every agent took its greedy action
        star_greedy = self.central_target.joint_value(q_star_target, greedy, state)  # target Q*(s, greedy)
        return wqmix_weights(self.weighting, q_taken, target, self.alpha, is_greedy, star_greedy)

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        b = self.read_batch(td, self.agent_net)
        obs, state, h0, valid = b.obs, b.state, b.h0, b.valid  # obs [B, L+1, A, F]
        action = b.action.unsqueeze(-1)  # [B, L, A, 1]
        needs_state = self.central is not None or (self.mixer is not None and getattr(self.mixer, "needs_state", True))
        if needs_state and state is None:
            raise KeyError(f"the mixer needs a state but the batch has no '{self.tensor_keys.state}' entry")

        # Steps nobody reads are skipped: the online net's last step (read only by double Q; a GRU's
        # earlier outputs do not depend on it) and a feed-forward target net's first (same numbers).
        full = b.recurrent or not self.skip_unread_steps
        q_all = self._unroll_online(obs if self.double_q or not self.skip_unread_steps else obs[:, :-1], h0, b.is_init)
        q_now = q_all[:, : obs.shape[1] - 1]  # [B, L, A, n]
        with torch.no_grad():
            q_next_target = self.agent_net_target.unroll(obs, h0)[0][:, 1:] if full else \
                self.agent_net_target.unroll(obs[:, 1:])[0]  # [B, L, A, n]

        chosen = q_now.gather(-1, action)  # [B, L, A, 1]
        q_taken = mix_values(self.mixer, chosen, b.state_now, actions=action, action_values=q_now,
                             action_mask=b.avail_now, observations=obs[:, :-1])

        with torch.no_grad():
            greedy = greedy_actions(q_now.detach(), b.avail_now)  # [B, L, A, 1]
            next_q = q_all.detach()[:, 1:] if self.double_q else q_next_target
            next_action = greedy_actions(next_q, b.avail_next)  # [B, L, A, 1]
            if self.central is None:  # the target mixer sees the target net's values of the next step
                next_chosen = q_next_target.gather(-1, next_action)
                next_value = mix_values(self.mixer_target, next_chosen, b.state_next, actions=next_action,
                                        action_values=q_next_target, action_mask=b.avail_next, observations=obs[:, 1:])
            else:  # Weighted QMIX: the target Q* scores QMIX's greedy next joint action
                q_star_target = self.central_target.unroll(obs)  # [B, L+1, A, n]
                next_value = self.central_target.joint_value(q_star_target[:, 1:], next_action, state[:, 1:])
            target = lambda_returns(b.reward, b.terminated, valid, next_value, gamma=self.gamma, lam=self.td_lambda)

        err = q_taken - target
        if self.loss_function == "l2":
            per = err.pow(2)
        else:
            per = F.smooth_l1_loss(q_taken, target, reduction="none")
        loss, extra = masked_mean(per, valid), {}
        if self.central is not None:  # Weighted QMIX: Q* learns the same targets; QMIX's errors are weighted
            q_star_all = unroll_with_burn_in(self.central.agent_net, obs, None, self.burn_in, b.is_init)  # never acts: h0 = 0
            q_star = self.central.joint_value(q_star_all[:, :-1], action, state[:, :-1])
            central_loss = masked_mean((q_star - target).pow(2), valid)
            weight = self._weights(q_taken, target, action, greedy, q_star_target[:, :-1], state[:, :-1])
            loss = masked_mean(per * weight, valid) + central_loss
            extra = {"central_loss": central_loss.detach(), "weight_mean": masked_mean(weight, valid)}
        return TensorDict(
            {
                "loss": loss,
                **extra,
                "td_error": masked_mean(err.abs(), valid).detach(),
                "q_value": masked_mean(q_taken, valid).detach(),
                "agent_q_value": masked_mean(chosen.squeeze(-1), valid).detach(),
                "target_value": masked_mean(target, valid).detach(),
            },
            batch_size=[],
        )
