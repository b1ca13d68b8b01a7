"""Stochastic policies from a shared agent network's raw output: a masked categorical for discrete
actions, a tanh-squashed normal scaled to the action bounds for continuous ones.

:class:`StochasticActionModule` turns the raw output into actions inside a collector: a sample while
exploring (``ExplorationType.RANDOM``), the mode under ``ExplorationType.DETERMINISTIC`` (evaluation).

>>> import torch
>>> from marl_torchrl.modules.actors import TanhBounded
>>> bound = TanhBounded(torch.full((2, 1), -1.0), torch.full((2, 1), 1.0))
>>> action, log_prob = squashed_normal_sample(torch.zeros(5, 2, 2), bound)
>>> action.shape, log_prob.shape
(torch.Size([5, 2, 1]), torch.Size([5, 2]))
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.envs.utils import ExplorationType, exploration_type

from marl_torchrl import keys
from marl_torchrl.modules.actors import TanhBounded, masked_logits

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def masked_log_probs(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Log-probabilities over actions; unavailable actions (``mask`` False) get probability exactly 0.

    >>> masked_log_probs(torch.zeros(1, 3), torch.tensor([[True, False, True]])).exp()
    tensor([[0.5000, 0.0000, 0.5000]])
    """
    return torch.log_softmax(masked_logits(logits, mask), dim=-1)


def _split(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw actor output ``[..., 2d]`` -> mean ``[..., d]`` and clamped log-std ``[..., d]``."""
    mean, log_std = raw.chunk(2, dim=-1)
    return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)


def squashed_normal_sample(raw: torch.Tensor, bound: TanhBounded) -> tuple[torch.Tensor, torch.Tensor]:
    """A reparameterised sample ``a = centre + half_range * tanh(u)``, ``u ~ N(mean, std)``, and its
    log-density ``[..., A]`` (summed over action dimensions, change of variables included).

    ``raw`` holds the mean and the log-std (``[..., 2d]``, clamped to [-5, 2]).
    """
    mean, log_std = _split(raw)
    u = mean + log_std.exp() * torch.randn_like(mean)
    normal = -0.5 * ((u - mean) / log_std.exp()).pow(2) - log_std - 0.5 * math.log(2 * math.pi)
    # log |da/du| = log(half_range) + log(1 - tanh(u)^2), the latter in a stable form
    log_det = bound.half_range.log() + 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return bound(u), (normal - log_det).sum(-1)


def squashed_normal_mode(raw: torch.Tensor, bound: TanhBounded) -> torch.Tensor:
    """The deterministic action: the squashed mean."""
    return bound(_split(raw)[0])


class StochasticActionModule(TensorDictModuleBase):
    """Actions from a stochastic actor's raw output: sampled while exploring, the mode in evaluation.

    Args:
        bound: a :class:`~marl_torchrl.modules.actors.TanhBounded` for continuous actions, or None for
            discrete ones (a categorical over the raw logits, respecting ``action_mask`` when present).

    >>> from tensordict import TensorDict
    >>> from torchrl.envs.utils import set_exploration_type
    >>> td = TensorDict({("agents", "actor_output"): torch.tensor([[[0.0, 5.0, 1.0]]]),
    ...                  ("agents", "action_mask"): torch.tensor([[[True, False, True]]])}, [1])
    >>> with set_exploration_type(ExplorationType.DETERMINISTIC):
    ...     StochasticActionModule()(td)["agents", "action"].tolist()
    [[2]]
    """

    def __init__(self, bound: TanhBounded | None = None, *, in_key=keys.ACTOR_OUTPUT, mask_key=keys.ACTION_MASK,
                 out_key=keys.ACTION):
        super().__init__()
        self.bound, self.in_key, self.mask_key, self.out_key = bound, in_key, mask_key, out_key
        self.in_keys = [in_key] if bound is not None else [in_key, mask_key]
        self.out_keys = [out_key]

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        raw = tensordict.get(self.in_key)
        explore = exploration_type() in (ExplorationType.RANDOM, None)
        if self.bound is not None:
            action = squashed_normal_sample(raw, self.bound)[0] if explore else squashed_normal_mode(raw, self.bound)
        else:
            log_probs = masked_log_probs(raw, tensordict.get(self.mask_key, None))
            if explore:
                action = torch.distributions.Categorical(logits=log_probs).sample()
            else:
                action = log_probs.argmax(-1)
        tensordict.set(self.out_key, action.detach())
        return tensordict
