"""Typed algorithm configs: one dataclass per algorithm family, the presets only name what differs.

``configs/algorithm/<preset>.yaml`` starts from one of these schemas (registered in Hydra's ConfigStore
under ``schema/algorithm/<schema name>``) through its ``defaults:`` list. A Python user who builds
``ValueDecompositionConfig(name="qmix", mixer="qmix")`` trains with exactly the numbers of
``marl-train algorithm=qmix``.

>>> cfg = ValueDecompositionConfig(name="vdn", mixer="vdn")
>>> cfg.lr, cfg.td_lambda, cfg.target_hard_interval
(0.0005, 0.6, 200)
>>> validate(ValueDecompositionConfig(name="qmix", target_tau=0.01), "algorithm")
Traceback (most recent call last):
...
marl_torchrl.registry.ConfigError: set exactly one of algorithm.target_hard_interval and algorithm.target_tau (the other null), got 200 and 0.01
>>> sorted(ALGORITHM_SCHEMAS)
['dop', 'facmac', 'pqn', 'value_decomposition', 'weighted_qmix']
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional

from omegaconf import MISSING

from marl_torchrl.config.fields import (
    mixer_kwargs, non_negative, one_of, opt, or_none, positive, unit_closed, unit_open_closed, validate,  # noqa: F401
)
from marl_torchrl.registry import ConfigError


@dataclass
class AlgorithmConfig:
    """What every algorithm has: a name, the discount, TD(lambda), the optimiser and target updates."""

    name: str = opt(MISSING, "the preset's name (run dirs, checkpoints)")
    gamma: float = opt(0.99, "discount", unit_open_closed)
    td_lambda: float = opt(0.6, "TD(lambda) targets; 0 = 1-step", unit_closed)
    optimizer: str = opt("adam", "optimiser of every loss term (radam: PQN's reference)",
                         one_of("adam", "rmsprop", "radam"))
    grad_clip: Optional[float] = opt(10.0, "max gradient norm per optimiser; null = no clipping", or_none(positive))
    target_hard_interval: Optional[int] = opt(200, "gradient steps between hard target copies (or target_tau)",
                                              or_none(positive))
    target_tau: Optional[float] = opt(None, "Polyak coefficient of soft target updates (or target_hard_interval)",
                                      or_none(unit_open_closed))
    standardise_rewards: bool = opt(False, "the loss reads (r - mean) / std, with a running mean and std of the "
                                           "rewards it has trained on (EPyMARL's standardise_rewards)")
    reward_scale: float = opt(1.0, "the loss trains on the team reward times this, after standardisation (logged "
                                   "returns stay unscaled, logged Q-values are in scaled units); JaxMARL's SMAX "
                                   "Q-learners and PQN: 10, SMAC's scale", positive)
    lr_decay: bool = opt(False, "decay every optimiser's learning rate linearly to 0 over total_frames (PQN's "
                                "schedule; the policy settles instead of swinging at the end of the budget)")

    def cross_check(self, prefix: str) -> None:
        if (self.target_hard_interval is None) == (self.target_tau is None):
            raise ConfigError(
                f"set exactly one of {prefix}.target_hard_interval and {prefix}.target_tau (the other null), "
                f"got {self.target_hard_interval} and {self.target_tau}"
            )


@dataclass
class EpsilonGreedyConfig:
    """Epsilon-greedy exploration over available actions, annealed linearly."""

    eps_start: float = opt(1.0, "epsilon at the start", unit_closed)
    eps_end: float = opt(0.05, "epsilon after the anneal", unit_closed)
    eps_anneal_fraction: float = opt(0.1, "fraction of total_frames over which epsilon anneals (or "
                                          "eps_anneal_frames)", unit_open_closed)
    eps_anneal_frames: Optional[int] = opt(None, "frames over which epsilon anneals (EPyMARL: 50000), whatever "
                                                 "total_frames is; null = eps_anneal_fraction", or_none(positive))

    def epsilon(self) -> dict[str, Any]:
        """The keywords of :func:`~marl_torchrl.algorithms.acting.epsilon_greedy_policy` for this schedule."""
        return {"eps": (self.eps_start, self.eps_end, self.eps_anneal_fraction), "anneal_frames": self.eps_anneal_frames}

    def check_epsilon(self, prefix: str) -> None:
        if self.eps_end > self.eps_start:
            raise ConfigError(f"{prefix}.eps_end ({self.eps_end}) must be <= {prefix}.eps_start ({self.eps_start})")


@dataclass
class ValueDecompositionConfig(AlgorithmConfig, EpsilonGreedyConfig):
    """IQL, VDN, QMIX, QPLEX...: sequence Q-learning of a shared agent network through a mixer."""

    mixer: Optional[str] = opt(MISSING, "mixer over the agents' Q-values (a registered mixer); null = IQL")
    mixer_options: Dict[str, Any] = opt({}, "the mixer's keyword arguments (its own defaults otherwise)",
                                       mixer_kwargs)
    double_q: bool = opt(True, "online network picks the next action, target network scores it")
    loss_function: str = opt("l2", "TD error loss", one_of("l2", "smooth_l1"))
    lr: float = opt(5e-4, "learning rate", positive)

    def cross_check(self, prefix: str) -> None:
        AlgorithmConfig.cross_check(self, prefix)
        self.check_epsilon(prefix)
        if self.mixer is None and self.mixer_options:
            raise ConfigError(f"{prefix}.mixer_options are set but {prefix}.mixer is null (IQL has no mixer)")


@dataclass
class WeightedQMIXConfig(ValueDecompositionConfig):
    """Weighted QMIX (Rashid et al. 2020): QMIX's loss weighted per transition, a central Q* for targets."""

    weighting: str = opt(MISSING, "ow: weight 1 where Q_tot < y; cw: weight 1 at greedy joint actions or y > Q*",
                         one_of("ow", "cw", unknown="weighting"))
    mixer: Optional[str] = opt("qmix", "QMIX's mixer (weighted)")
    alpha: float = opt(0.1, "weight of down-weighted transitions", unit_open_closed)
    central_mixer_embed: int = opt(256, "hidden units of Q*'s feed-forward mixer", positive)

    def cross_check(self, prefix: str) -> None:
        ValueDecompositionConfig.cross_check(self, prefix)
        if self.mixer is None:
            raise ConfigError(f"Weighted QMIX needs a mixer; {prefix}.mixer is null")


@dataclass
class ActorCriticConfig(AlgorithmConfig):
    """Shared by the actor-critics: learning rates, the per-agent critic's width, soft target updates."""

    td_lambda: float = opt(0.8, "TD(lambda) targets; 0 = 1-step", unit_closed)
    target_hard_interval: Optional[int] = opt(None, "gradient steps between hard target copies (or target_tau)",
                                              or_none(positive))
    target_tau: Optional[float] = opt(0.005, "Polyak coefficient of soft target updates", or_none(unit_open_closed))
    actor_lr: float = opt(5e-4, "actor learning rate", positive)
    critic_lr: float = opt(5e-4, "critic (and mixer) learning rate", positive)
    critic_hidden_dim: int = opt(64, "per-agent critic width", positive)


@dataclass
class EntropyConfig:
    """A learned temperature for stochastic actors (SAC's): the entropy bonus's weight and its target."""

    alpha_lr: float = opt(0.003, "temperature learning rate", positive)
    alpha_init: float = opt(0.01, "initial temperature", positive)
    learn_alpha: bool = opt(True, "false: keep alpha_init fixed")
    target_entropy: Optional[float] = opt(None, "per agent; null = -action_dim (continuous), "
                                                "0.5 log(n_actions) (discrete)")


@dataclass
class FACMACConfig(EntropyConfig, ActorCriticConfig, EpsilonGreedyConfig):
    """FACMAC (Peng et al. 2021): shared actor, per-agent critic, a mixer, centralised policy gradient."""

    mixer: Optional[str] = opt("nonmonotonic", "mixer over the critics; null = independent critics")
    mixer_options: Dict[str, Any] = opt({}, "the mixer's keyword arguments (its own defaults otherwise)",
                                       mixer_kwargs)
    critic_layers: int = opt(2, "hidden layers of the critic", positive)
    gumbel_temperature: float = opt(1.0, "discrete actions: straight-through Gumbel-Softmax temperature", positive)
    action_reg: float = opt(0.001, "continuous actions: weight of mean(tanh(raw)^2) in the actor loss", non_negative)
    preact_reg: float = opt(0.0, "continuous actions: weight of mean(raw^2), the actor's pre-tanh output, in the "
                                 "actor loss (MADDPG's regulariser; unlike tanh^2 its gradient does not vanish "
                                 "where tanh saturates)", non_negative)
    eps_start: float = opt(0.5, "discrete actions: epsilon at the start", unit_closed)
    noise_sigma_start: float = opt(0.1, "continuous actions: Gaussian noise, in half action ranges", non_negative)
    noise_sigma_end: float = opt(0.1, "continuous actions: noise after the anneal", non_negative)
    noise_anneal_fraction: float = opt(1.0, "fraction of total_frames over which the noise anneals",
                                       unit_open_closed)
    noise_type: str = opt("gaussian", "continuous actions: gaussian (independent each step) or ou "
                                      "(Ornstein-Uhlenbeck: noise_sigma is its stationary std, and it pushes the "
                                      "same way for about 1/ou_theta steps; FACMAC's reference option)",
                          one_of("gaussian", "ou"))
    random_frames: int = opt(0, "continuous actions: uniform random actions for the first this many collected "
                                "frames (TD3/SAC's start_steps; FACMAC's reference: 10000)", non_negative)
    ou_theta: float = opt(0.15, "continuous actions, noise_type=ou: mean reversion per step", unit_open_closed)
    twin_critics: bool = opt(False, "TD3's clipped double Q: a second critic and mixer, targets from the "
                                    "smaller of the two mixed values")
    target_noise: float = opt(0.0, "continuous actions: std of the clipped Gaussian noise on the target "
                                   "actor's action, in half action ranges (TD3's smoothing: 0.2; 0 = none)", non_negative)
    target_noise_clip: float = opt(0.5, "continuous actions: the target noise is clipped to +-this", non_negative)
    policy_delay: int = opt(1, "critic updates per actor update (TD3: 2)", positive)
    stochastic_actor: bool = opt(False, "a stochastic actor (categorical, or tanh-squashed normal) with SAC's "
                                        "entropy bonus and learned temperature (the alpha_* keys) in its loss "
                                        "and in the critic's targets; it explores by sampling, so the epsilon "
                                        "and noise keys do not apply; evaluation plays its mode")

    def cross_check(self, prefix: str) -> None:
        ActorCriticConfig.cross_check(self, prefix)
        self.check_epsilon(prefix)
        if self.noise_sigma_end > self.noise_sigma_start:
            raise ConfigError(f"{prefix}.noise_sigma_end must be <= {prefix}.noise_sigma_start")
        unused = EXPLORATION_KEYS if self.stochastic_actor else ENTROPY_KEYS
        changed = [k for k in unused if getattr(self, k) != _default(type(self), k)]
        if changed:
            why = ("a stochastic actor explores by sampling" if self.stochastic_actor
                   else "the temperature needs stochastic_actor=true")
            raise ConfigError(f"{prefix}.{changed[0]} has no effect with {prefix}.stochastic_actor="
                              f"{str(self.stochastic_actor).lower()}: {why}")
        if self.stochastic_actor and self.target_noise:
            raise ConfigError(f"{prefix}.target_noise (TD3's smoothing) needs a deterministic actor; the stochastic "
                              f"actor's targets sample its policy")


@dataclass
class DOPConfig(EntropyConfig, ActorCriticConfig):
    """DOP with soft actor-critic: stochastic agents, twin recurrent critics each mixed by k_i(s) >= 0."""

    td_lambda: float = opt(0.6, "TD(lambda) targets; 0 = 1-step", unit_closed)
    mixer_options: Dict[str, Any] = opt({}, "the DOP mixers' keyword arguments (hypernet_embed)",
                                       mixer_kwargs)
    critic_rnn: bool = opt(True, "GRU trunk over each agent's own observation history")


#: FACMAC keys that act only with a deterministic actor, and those only with a stochastic one.
EXPLORATION_KEYS = ("eps_start", "eps_end", "eps_anneal_fraction", "eps_anneal_frames", "noise_sigma_start",
                    "noise_sigma_end", "noise_anneal_fraction", "noise_type", "ou_theta", "random_frames")
ENTROPY_KEYS = tuple(f.name for f in dataclasses.fields(EntropyConfig))


def _default(cls: type, name: str) -> Any:
    field = cls.__dataclass_fields__[name]
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


#: schema name -> dataclass; the ConfigStore holds each as ``schema/algorithm/<name>``.
ALGORITHM_SCHEMAS: dict[str, type] = {
    "value_decomposition": ValueDecompositionConfig,
    "weighted_qmix": WeightedQMIXConfig,
    "facmac": FACMACConfig,
    "dop": DOPConfig,
}


def register_algorithm_schema(name: str, schema: type) -> type:
    """Make a new algorithm's config dataclass known (also to Hydra, as ``schema/algorithm/<name>``);
    register its builder under the same name in :data:`marl_torchrl.registry.ALGORITHMS`."""
    if name in ALGORITHM_SCHEMAS:
        raise ConfigError(f"algorithm schema '{name}' is registered already")
    ALGORITHM_SCHEMAS[name] = schema
    from marl_torchrl.config.store import store_schema

    store_schema("algorithm", name, schema)
    return schema
