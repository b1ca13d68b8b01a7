"""FACMAC (Peng et al. 2021): factored multi-agent centralised policy gradients, over sequences.

For a batch of ``B`` sequences of ``L`` transitions (``L + 1`` observation slots), read top to bottom:

1. critic: each agent's ``Q_i(o_i, a_i)`` at the taken actions, mixed with the state into ``Q_tot``;
2. target: the target actor unrolls over the same observations from the same start state and plays
   its greedy action (discrete: one-hot argmax among available actions; continuous: the bounded
   deterministic action, optionally with TD3's clipped Gaussian target noise, ``target_noise``); the
   target critic and target mixer score it (with a twin critic, the smaller of the two mixed values:
   TD3's clipped double Q); TD(lambda) or 1-step targets, truncated steps bootstrap and terminated
   steps do not;
3. ``loss_qvalue``: squared TD error over valid transitions (summed over twin critics); it trains
   critic(s) and mixer(s);
4. ``loss_actor``: the online actor unrolls (burn-in steps without gradient) and ALL agents' actions
   come from it at once (discrete: straight-through Gumbel-Softmax among available actions;
   continuous: bounded deterministic actions); ``-Q_tot`` through the critic and mixer, whose
   parameters are detached so this term trains the actor alone; continuous actors add
   ``action_reg * mean(tanh(raw)^2)`` and ``preact_reg * mean(raw^2)`` (on the pre-tanh output, MADDPG's
   policy regulariser: its gradient does not vanish where tanh saturates, so it pulls a saturated actor
   back where ``-Q_tot``'s gradient reaches it) and log ``action_saturation``, the fraction of action
   components with ``|tanh(raw)| > 0.99``. With ``policy_delay = d`` this term has a gradient on every
   d-th call only (TD3's delayed policy updates); on the others it is computed without one, for the logs.

Steps 2 and 4 are the hooks ``_next_value`` and ``_actor_term``;
:class:`~marl_torchrl.objectives.facmac_soft.SoftFACMACLoss` overrides them for a stochastic actor.

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
        preact_reg: weight of ``mean(raw^2)``, the pre-tanh output, in the actor loss (continuous).
        burn_in: steps without gradient at the start of sequences that begin mid-episode.
        twin_critic, twin_mixer: a second critic (and mixer, when ``mixer`` is given) with their own
            parameters; targets take the smaller mixed value of the two (clipped double Q). The actor
            follows the first critic.
        target_noise, target_noise_clip: continuous actions: std and clip of the Gaussian noise added to
            the target actor's action, in half action ranges (TD3's target policy smoothing; 0 = none).
        policy_delay: the actor term has a gradient on every ``policy_delay``-th call (1 = every call).

    Keys are renamable with ``set_keys`` (observation, state, action, action_mask, reward,
    terminated, mask, is_init, hidden).

    >>> from marl_torchrl.modules import SharedAgentNet
    >>> from marl_torchrl.modules.critics import AgentActionCritic
    >>> FACMACLoss(SharedAgentNet(3, 2, 4), AgentActionCritic(3, 4, 2), None)
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: FACMAC needs either n_actions (discrete) or bound (continuous actions)

    TD3's three stabilisers on continuous actions, with a twin critic and mixer:

    >>> import torch
    >>> from marl_torchrl.data.synthetic import random_sequences
    >>> from marl_torchrl.modules import VDNMixer
    >>> from marl_torchrl.modules.actors import TanhBounded
    >>> bound = TanhBounded(-torch.ones(2, 3), torch.ones(2, 3))
    >>> td3 = FACMACLoss(SharedAgentNet(3, 2, 3), AgentActionCritic(3, 3, 2, discrete=False), VDNMixer(2, 'cpu'),
    ...                  bound=bound, twin_critic=AgentActionCritic(3, 3, 2, discrete=False), twin_mixer=VDNMixer(2, 'cpu'),
    ...                  target_noise=0.2, policy_delay=2)
    >>> batch = random_sequences(batch=2, seq_len=4, n_agents=2, obs_dim=3, n_actions=3, state_dim=6, hidden_dim=64)
    >>> batch["agents", "action"] = torch.rand(2, 5, 2, 3)  # continuous actions [B, L + 1, A, d]
    >>> [td3(batch)["loss_actor"].requires_grad for _ in range(4)]
    [True, False, True, False]
    """

    algorithm = "FACMAC"
    target_names = (("actor", "actor_target"), ("critic", "critic_target"), ("mixer", "mixer_target"),
                    ("twin_critic", "twin_critic_target"), ("twin_mixer", "twin_mixer_target"))

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
        preact_reg: float = 0.0,
        burn_in: int = 0,
        standardise_rewards: bool = False,
        reward_scale: float = 1.0,
        twin_critic: nn.Module | None = None,
        twin_mixer: nn.Module | None = None,
        target_noise: float = 0.0,
        target_noise_clip: float = 0.5,
        policy_delay: int = 1,
    ):
        super().__init__(gamma=gamma, td_lambda=td_lambda, burn_in=burn_in, standardise_rewards=standardise_rewards,
                         reward_scale=reward_scale)
        self.set_action_space(n_actions=n_actions, bound=bound)
        if not gumbel_temperature > 0 or action_reg < 0 or preact_reg < 0:
            raise ConfigError(f"need gumbel_temperature > 0, action_reg >= 0 and preact_reg >= 0, "
                              f"got {gumbel_temperature}, {action_reg}, {preact_reg}")
        # a critic scores the actions it is given: no values of all actions; indices only for discrete ones
        self.check_mixer_inputs(mixer, ("observations", "actions", "action_mask") if self.discrete else ("observations",))
        if twin_critic is not None and (twin_critic is critic or (mixer is None) != (twin_mixer is None)
                                        or (mixer is not None and twin_mixer is mixer)):
            raise ConfigError("a twin critic needs its own parameters, and its own mixer when there is a mixer")
        if twin_critic is None and twin_mixer is not None:
            raise ConfigError("twin_mixer without twin_critic")
        if target_noise < 0 or target_noise_clip < 0 or policy_delay < 1:
            raise ConfigError(f"need target_noise >= 0, target_noise_clip >= 0 and policy_delay >= 1, "
                              f"got {target_noise}, {target_noise_clip}, {policy_delay}")
        if target_noise and self.discrete:
            raise ConfigError("target_noise (target policy smoothing) needs continuous actions")
        self.actor, self.critic, self.mixer = actor, critic, mixer
        self.twin_critic, self.twin_mixer = twin_critic, twin_mixer
        self.make_targets()
        self.gumbel_temperature, self.action_reg = float(gumbel_temperature), float(action_reg)
        self.preact_reg = float(preact_reg)
        self.target_noise, self.target_noise_clip = float(target_noise), float(target_noise_clip)
        self.policy_delay, self.calls = int(policy_delay), 0  # calls: not checkpointed (restarts the delay cycle)

    def _encode(self, action: torch.Tensor) -> torch.Tensor:
        """Replayed actions as critic inputs: one-hot (discrete) or as they are (continuous)."""
        return F.one_hot(action.long(), self.n_actions).float() if self.discrete else action.float()

    def _policy_action(self, raw: torch.Tensor, avail: torch.Tensor | None, *, sample: bool) -> torch.Tensor:
        if not self.discrete:
            return self.bound(raw)
        if sample:
            return gumbel_softmax_st(raw, self.gumbel_temperature, avail)
        return greedy_one_hot(raw, avail)

    def _target_action(self, raw: torch.Tensor, avail: torch.Tensor | None) -> torch.Tensor:
        """The target actor's action: greedy, or (continuous, ``target_noise``) bounded action plus clipped
        Gaussian noise in half action ranges, kept inside the bounds."""
        if self.discrete or not self.target_noise:
            return self._policy_action(raw, avail, sample=False)
        noise = (torch.randn_like(raw) * self.target_noise).clamp(-self.target_noise_clip, self.target_noise_clip)
        return self.bound.scaled((self.bound.normalised(raw) + noise).clamp(-1.0, 1.0))

    def _regularise(self, loss_actor: torch.Tensor, raw: torch.Tensor, valid: torch.Tensor):
        """A continuous actor's loss with its two regularisers, and the saturated fraction of its actions."""
        squashed = self.bound.normalised(raw)
        if self.action_reg:
            loss_actor = loss_actor + self.action_reg * masked_mean(squashed.pow(2), valid)
        if self.preact_reg:
            loss_actor = loss_actor + self.preact_reg * masked_mean(raw.pow(2), valid)
        saturated = masked_mean((squashed.detach().abs() > 0.99).float(), valid)
        return loss_actor, {"action_saturation": saturated}

    def _next_value(self, raw_next: torch.Tensor, obs_next: torch.Tensor, b) -> torch.Tensor:
        """The target critic(s) and mixer(s) at the target actor's next action (the smaller of the twins')."""
        return self._min_target_value(obs_next, self._target_action(raw_next, b.avail_next), b)

    def _min_target_value(self, obs_next: torch.Tensor, action: torch.Tensor, b) -> torch.Tensor:
        value = self._target_value(self.critic_target, self.mixer_target, obs_next, action, b)
        if self.twin_critic is not None:
            twin = self._target_value(self.twin_critic_target, self.twin_mixer_target, obs_next, action, b)
            value = torch.minimum(value, twin)
        return value

    def _target_value(self, critic, mixer, obs, action, b) -> torch.Tensor:
        return mix_values(mixer, critic(obs, action), b.state_next, **self._mixer_inputs(obs, action, b.avail_next))

    def _policy_value(self, obs: torch.Tensor, action: torch.Tensor, b) -> torch.Tensor:
        """``Q_tot`` of the actor's actions through the critic and mixer with detached parameters."""
        return mix_values(self.mixer, call_detached(self.critic, obs, action), b.state_now, detached=True,
                          **self._mixer_inputs(obs, action, b.avail_now))

    def _actor_term(self, raw: torch.Tensor, obs: torch.Tensor, b):
        """``(loss_actor, Q_tot of the actor's actions, extra logs)`` for the actor's raw output ``raw``."""
        q_tot_pi = self._policy_value(obs, self._policy_action(raw, b.avail_now, sample=True), b)
        loss_actor = -masked_mean(q_tot_pi, b.valid)
        if self.discrete:
            return loss_actor, q_tot_pi, {}
        loss_actor, extra = self._regularise(loss_actor, raw, b.valid.unsqueeze(-1))
        return loss_actor, q_tot_pi, extra

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
        pairs = [(self.critic, self.mixer)] + ([(self.twin_critic, self.twin_mixer)] if self.twin_critic else [])
        q_taken = [mix_values(m, c(obs[:, :-1], action), state_now, **self._mixer_inputs(obs[:, :-1], action, b.avail_now))
                   for c, m in pairs]
        with torch.no_grad():
            raw_target, _ = self.actor_target.unroll(obs, h0)
            next_value = self._next_value(raw_target[:, 1:], obs[:, 1:], b)
            target = lambda_returns(b.reward, b.terminated, valid, next_value, gamma=self.gamma, lam=self.td_lambda)
        err = q_taken[0] - target
        loss_qvalue = sum(masked_mean((q - target).pow(2), valid) for q in q_taken)

        # 4. centralised policy gradient: every agent's action from the current actor at once
        self.calls += 1
        with torch.set_grad_enabled(torch.is_grad_enabled() and (self.calls - 1) % self.policy_delay == 0):
            raw = unroll_with_burn_in(self.actor, obs[:, :-1], h0, self.burn_in, b.is_init)  # [B, L, A, n or d]
            loss_actor, q_tot_pi, extra = self._actor_term(raw, obs[:, :-1], b)

        return TensorDict(
            {
                "loss_actor": loss_actor,
                "loss_qvalue": loss_qvalue,
                "td_error": masked_mean(err.abs(), valid).detach(),
                "q_value": masked_mean(q_taken[0], valid).detach(),
                "q_value_policy": masked_mean(q_tot_pi, valid).detach(),
                "target_value": masked_mean(target, valid).detach(),
                **extra,
            },
            batch_size=[],
        )
