"""PQN's typed config (Gallici et al., ICLR 2025): on-policy Q(lambda) on each fresh rollout, no target network.

Defaults are the reference's SMAX settings (purejaxql ``pqn_vdn_rnn_smax.yaml``) where they are
algorithm keys: Adam 2.5e-4 decayed linearly to 0, 4 epochs per rollout, gamma 0.99, lambda 0.85, max
gradient norm 1, epsilon 1 -> 0.01 over the first 10% of frames, rewards x10. The rollout's shape (128
envs x 128 steps there) is ``env.num_envs`` and ``collector.frames_per_batch``. The reference's 16
minibatches need at least 16 envs; the default is 4, which divides every env preset's batch (8, 32, 64).
The reference's normalised network is a model setting: the ``pqn_*`` presets select
``configs/model/normalised.yaml`` (``model.layer_norm=true``, ``model.input_norm=layer``; either can be overridden).

>>> cfg = PQNConfig(name="pqn_vdn", mixer="vdn")
>>> cfg.td_lambda, cfg.lr, cfg.epochs, cfg.minibatches, cfg.target_hard_interval
(0.85, 0.00025, 4, 4, None)
>>> validate(PQNConfig(name="pqn_vdn", mixer="vdn", target_tau=0.01), "algorithm")
Traceback (most recent call last):
...
marl_torchrl.registry.ConfigError: PQN has no target network: leave algorithm.target_hard_interval and algorithm.target_tau null, got None and 0.01
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

from omegaconf import MISSING

from marl_torchrl.config.algorithms import ALGORITHM_SCHEMAS, AlgorithmConfig, EpsilonGreedyConfig
from marl_torchrl.config.fields import mixer_kwargs, opt, or_none, positive, unit_closed, validate  # noqa: F401
from marl_torchrl.registry import ConfigError


@dataclass
class PQNConfig(AlgorithmConfig, EpsilonGreedyConfig):
    """PQN with an optional mixer: ``pqn_vdn``, ``pqn_qmix``, ``pqn_iql`` (mixer null) or any registered mixer.

    >>> PQNConfig(name="pqn_iql", mixer=None).eps_end
    0.01
    """

    td_lambda: float = opt(0.85, "Q(lambda) over each rollout; 0 = 1-step targets", unit_closed)
    grad_clip: Optional[float] = opt(1.0, "max gradient norm; null = no clipping", or_none(positive))
    target_hard_interval: Optional[int] = opt(None, "PQN has no target network: must stay null")
    target_tau: Optional[float] = opt(None, "PQN has no target network: must stay null")
    eps_end: float = opt(0.01, "epsilon after the anneal", unit_closed)
    mixer: Optional[str] = opt(MISSING, "mixer over the agents' Q-values (a registered mixer); null = independent")
    mixer_options: Dict[str, Any] = opt({}, "the mixer's keyword arguments (its own defaults otherwise)",
                                       mixer_kwargs)
    lr: float = opt(2.5e-4, "learning rate", positive)
    lr_decay: bool = opt(True, "decay the learning rate linearly to 0 over total_frames (the reference's)")
    epochs: int = opt(4, "passes over each rollout", positive)
    minibatches: int = opt(4, "groups of whole env rows per pass (must divide env.num_envs; the reference: 16 "
                              "of 128 envs)", positive)
    reward_scale: float = opt(10.0, "the loss trains on the team reward times this (the reference's SMAX setting)",
                              positive)

    def cross_check(self, prefix: str) -> None:
        if self.target_hard_interval is not None or self.target_tau is not None:
            raise ConfigError(
                f"PQN has no target network: leave {prefix}.target_hard_interval and {prefix}.target_tau null, "
                f"got {self.target_hard_interval} and {self.target_tau}")
        self.check_epsilon(prefix)
        if self.mixer is None and self.mixer_options:
            raise ConfigError(f"{prefix}.mixer_options are set but {prefix}.mixer is null (no mixer)")


ALGORITHM_SCHEMAS.setdefault("pqn", PQNConfig)  # stored in Hydra's ConfigStore with the others
