"""PQN's loss (Gallici et al., ICLR 2025): Q(lambda) on minibatches of the last collected rollout, with the
online network for targets (no target network), through an optional mixer (PQN-VDN, PQN-QMIX, ...).

Read top to bottom, for a minibatch of ``E`` whole env rows of a ``[E_all, T]`` rollout, as the collector
wrote it (``("next", ...)`` entries per step; no replay, no padding):

1. the agent network runs over the ``T`` steps (:func:`~marl_torchrl.objectives.rollout_ops.unroll_with_next`):
   a GRU starts from the hidden state the acting policy had at the rollout's first step and is reset to
   zero where ``is_init`` (an episode restarts inside the rollout), so its Q-values are the acting ones;
2. the same unroll scores each step's next observation, from the hidden state after that step (for a
   truncated step this is the final observation of its episode, not the reset one), without gradient;
   each agent's greedy next action among its available ones is mixed into the next value;
3. Q(lambda) targets over the rollout (:func:`~marl_torchrl.objectives.rollout_ops.q_lambda_returns`):
   terminated steps do not bootstrap, truncated steps and the rollout's last step bootstrap from their
   next value, returns do not flow across episode boundaries; the team reward is scaled by ``reward_scale``;
4. the mean squared error of the mixed chosen Q-values against the targets.

>>> import torch
>>> from marl_torchrl.modules.agents import SharedAgentNet
>>> from torchrl.modules.models.multiagent import VDNMixer
>>> loss = PQNLoss(SharedAgentNet(3, 2, 4, hidden_dim=8), VDNMixer(2, device="cpu"), gamma=0.9, td_lambda=0.8)
>>> out = loss(random_rollout(envs=4, steps=5, n_agents=2, obs_dim=3, n_actions=4, state_dim=6, hidden_dim=8))
>>> sorted(out.keys())
['agent_q_value', 'loss', 'q_value', 'target_value', 'td_error']
>>> out["loss"].backward()
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.utils import NestedKey
from torch import nn

from marl_torchrl import keys
from marl_torchrl.modules.mixers.base import MIXER_INPUTS
from marl_torchrl.objectives.rollout_ops import q_lambda_returns, unroll_with_next
from marl_torchrl.objectives.sequence_batch import StepKeys
from marl_torchrl.objectives.sequence_ops import SequenceLoss, mix_values
from marl_torchrl.objectives.weighted import greedy_actions


@dataclass
class PQNKeys(StepKeys):
    """The rollout keys PQN reads (``next`` entries are these under ``"next"``); renamable with ``set_keys``.

    >>> PQNKeys().done
    'done'
    """

    done: NestedKey = keys.DONE


def _next(key: NestedKey) -> tuple:
    return ("next", *keys.as_tuple(key))


class PQNLoss(SequenceLoss):
    """Q(lambda) loss on ``[E, T]`` rollout minibatches with an optional mixer (None = independent learners).

    Args:
        agent_net: a :class:`~marl_torchrl.modules.agents.SharedAgentNet` producing Q-values (MLP or GRU).
        mixer: any torchrl ``Mixer`` (ours, torchrl's ``VDNMixer``/``QMixer``), or None.
        gamma, td_lambda: discount and lambda of the Q(lambda) targets.
        reward_scale: the team reward is multiplied by this (PQN's SMAX setting: 10), after
            standardisation with ``standardise_rewards``.

    >>> from marl_torchrl.modules.agents import SharedAgentNet
    >>> loss = PQNLoss(SharedAgentNet(3, 2, 4, rnn=False), None)
    >>> loss.set_keys(state="global_state"); loss.tensor_keys.state, loss.target_pairs()
    ('global_state', [])
    """

    _AcceptedKeys = PQNKeys
    default_keys = PQNKeys
    tensor_keys: PQNKeys
    algorithm = "PQN"

    def __init__(self, agent_net: nn.Module, mixer: nn.Module | None = None, *, gamma: float = 0.99,
                 td_lambda: float = 0.85, reward_scale: float = 1.0, standardise_rewards: bool = False):
        super().__init__(gamma=gamma, td_lambda=td_lambda, standardise_rewards=standardise_rewards,
                         reward_scale=reward_scale)
        self.check_mixer_inputs(mixer, MIXER_INPUTS)
        self.agent_net, self.mixer = agent_net, mixer

    def agent_values(self, td: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Q-values ``[E, T, A, n]`` at every step of the rollout rows ``td``, and the hidden state after each
        step (None for an MLP): the values the acting policy computed, at unchanged parameters."""
        return self.rollout_values(td)[:2]

    def rollout_values(self, td: TensorDictBase):
        """:meth:`agent_values` and, detached, the Q-values of each step's next observation from the state
        after that step, ``[E, T, A, n]``: one unroll of the rows."""
        k = self.tensor_keys
        h0 = td.get(k.hidden)[:, 0] if getattr(self.agent_net, "rnn", False) else None
        q, h_after, q_next = unroll_with_next(self.agent_net, td.get(k.observation), td.get(_next(k.observation)),
                                              h0, td.get(k.is_init), td.get(_next(k.done)))
        return q, h_after, q_next.detach()

    @torch.no_grad()
    def targets(self, td: TensorDictBase, q_next: torch.Tensor | None = None) -> torch.Tensor:
        """Q(lambda) targets ``[E, T, 1]`` (``[E, T, A]`` without a mixer) of the rollout rows ``td``;
        ``q_next`` are the Q-values of each step's next observation (from :meth:`rollout_values` if None)."""
        k = self.tensor_keys
        if q_next is None:
            q_next = self.rollout_values(td)[2]
        next_obs, next_avail = td.get(_next(k.observation)), td.get(_next(k.action_mask), None)
        next_action = greedy_actions(q_next, next_avail)
        next_value = mix_values(self.mixer, q_next.gather(-1, next_action), td.get(_next(k.state), None),
                                actions=next_action, action_values=q_next, action_mask=next_avail,
                                observations=next_obs)
        reward = td.get(_next(k.reward)).to(next_value.dtype)
        reward = self.rewards(reward, torch.ones_like(reward))  # standardised (if asked), then scaled
        return q_lambda_returns(reward, td.get(_next(k.terminated)), td.get(_next(k.done)), next_value,
                                gamma=self.gamma, lam=self.td_lambda)

    def step_values(self, td: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per step of the rollout rows ``td``: the mixed chosen Q-values ``[E, T, 1]`` (``[E, T, A]``
        without a mixer), their Q(lambda) targets, and each agent's chosen Q-value ``[E, T, A, 1]``."""
        k = self.tensor_keys
        obs, state, avail = td.get(k.observation), td.get(k.state, None), td.get(k.action_mask, None)
        action = td.get(k.action).unsqueeze(-1)  # [E, T, A, 1]
        q, _, q_next = self.rollout_values(td)  # [E, T, A, n]
        target = self.targets(td, q_next)
        chosen = q.gather(-1, action)  # [E, T, A, 1]
        q_taken = mix_values(self.mixer, chosen, state, actions=action, action_values=q, action_mask=avail,
                             observations=obs)
        return q_taken, target, chosen

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        return TensorDict(loss_terms(*self.step_values(td), torch.mean), batch_size=[])


def loss_terms(q_taken: torch.Tensor, target: torch.Tensor, chosen: torch.Tensor, mean) -> dict[str, torch.Tensor]:
    """The loss (mean squared error of ``q_taken`` against ``target``) and its diagnostics, each reduced by
    ``mean`` (``torch.mean``; the stacked seeds' loss: a mean per seed).

    >>> loss_terms(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0]), torch.zeros(2, 1), torch.mean)["loss"]
    tensor(5.)
    """
    err = q_taken - target
    return {
        "loss": mean(err.pow(2)),
        "td_error": mean(err.detach().abs()),
        "q_value": mean(q_taken.detach()),
        "agent_q_value": mean(chosen.detach()),
        "target_value": mean(target),
    }


def random_rollout(*, envs: int, steps: int, n_agents: int, obs_dim: int, n_actions: int, state_dim: int,
                   hidden_dim: int | None = None, p_done: float = 0.2) -> TensorDict:
    """A random ``[envs, steps]`` rollout with the collector's layout (for doctests and tests): episodes end
    (terminated or truncated, half each) with probability ``p_done`` per step and restart at the next one;
    a step's next observation and state are the following step's, except at a done step (a final one).

    >>> random_rollout(envs=2, steps=3, n_agents=2, obs_dim=4, n_actions=5, state_dim=6).batch_size
    torch.Size([2, 3])
    """
    e, t, a = envs, steps, n_agents
    done = torch.rand(e, t, 1) < p_done
    term = done & (torch.rand(e, t, 1) < 0.5)
    is_init = torch.zeros(e, t, 1, dtype=torch.bool)
    is_init[:, 1:] = done[:, :-1]
    is_init[:, 0] = torch.rand(e, 1) < 0.5
    td = TensorDict({
        keys.OBS: torch.randn(e, t, a, obs_dim), keys.STATE: torch.randn(e, t, state_dim),
        keys.ACTION: torch.randint(n_actions, (e, t, a)), keys.IS_INIT: is_init,
        "next": {keys.OBS: torch.randn(e, t, a, obs_dim), keys.STATE: torch.randn(e, t, state_dim),
                 keys.REWARD: torch.randn(e, t, 1), keys.TERMINATED: term, keys.TRUNCATED: done & ~term,
                 keys.DONE: done},
    }, [e, t])
    goes_on = ~done[:, :-1].unsqueeze(-1)
    for key, shape in ((keys.OBS, (a, obs_dim)), (keys.STATE, (state_dim,))):
        nxt = td.get(("next", *keys.as_tuple(key)))
        here = td.get(key)[:, 1:]
        nxt[:, :-1] = torch.where(goes_on.reshape(e, t - 1, *[1] * len(shape)), here, nxt[:, :-1])
    if hidden_dim is not None:
        td.set(keys.HIDDEN, torch.randn(e, t, a, hidden_dim) * (~is_init).unsqueeze(-1))
    return td
