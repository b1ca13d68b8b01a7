"""The run's typed config: every key of ``marl-train`` outside the ``algorithm`` and ``env`` groups.

Each default is written here and nowhere else; ``configs/config.yaml`` only picks the groups.

>>> cfg = RunConfig()
>>> cfg.replay.burn_in, cfg.model.type, cfg.total_frames
(0, 'gru', 500000)
>>> validate(RunConfig(model=ModelConfig(hidden_dim=0)))
Traceback (most recent call last):
...
marl_torchrl.registry.ConfigError: model.hidden_dim must be > 0, got 0
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

from omegaconf import MISSING

from marl_torchrl.config.fields import (
    non_negative, one_of, opt, or_none, positive, subset_of, validate,
)
from marl_torchrl.registry import ConfigError

LOGGERS = ("csv", "wandb", "tensorboard")


def _int_positive(x: Any) -> str | None:
    return positive(x) if isinstance(x, int) else "must be a positive integer"


def _device(x: Any) -> str | None:
    base, _, index = str(x).partition(":")
    return None if base in ("cpu", "cuda") and (not index or index.isdigit()) else "must be cpu, cuda or cuda:N"


@dataclass
class ModelConfig:
    """The shared agent network (and the agents' inputs)."""

    type: str = opt("gru", "agent network", one_of("gru", "mlp"))
    hidden_dim: int = opt(64, "width of every hidden layer and of the GRU state", positive)
    layers: int = opt(2, "hidden layers of the MLP (type=mlp only)", positive)
    input_layers: int = opt(1, "type=gru: [-> hidden_dim] layers before the GRU (PyMARL: 1; PQN's reference: 2); "
                               "0: the GRU reads the observation", non_negative)
    agent_id: bool = opt(True, "append a one-hot agent id to each observation")
    last_action: bool = opt(False, "append each agent's previous action (one-hot if discrete) to its observation")
    layer_norm: bool = opt(False, "LayerNorm after each hidden linear layer")
    input_norm: Optional[str] = opt(None, "each agent's observation features normalised: layer (a LayerNorm, stateless), "
                                          "running (per-feature mean and variance of all collected observations, "
                                          "updated once per collected batch) or null", or_none(one_of("layer", "running")))
    activation: str = opt("relu", "hidden activation", one_of("relu", "tanh", "elu", "gelu"))
    orthogonal_init: bool = opt(True, "orthogonal weights (gain sqrt(2) hidden, small on the head)")

    def cross_check(self, prefix: str) -> None:
        """Each depth key belongs to one network type: set for the other type, it would do nothing."""
        own, other = ("input_layers", "layers") if self.type == "gru" else ("layers", "input_layers")
        if getattr(self, other) != ModelConfig.__dataclass_fields__[other].default:
            raise ConfigError(f"{prefix}.{other} does nothing for {prefix}.type={self.type}: its depth is "
                              f"{prefix}.{own}")


@dataclass
class CollectorConfig:
    frames_per_batch: int = opt(3200, "frames per iteration, across all env.num_envs envs (a multiple of it)",
                                positive)
    batch_seeds: bool = opt(True, "num_seeds > 1: step all seeds' envs as one env of num_seeds x env.num_envs with one "
                                  "policy forward, where the env can (VMAS, GridWorld25, SMAX, matrix games, LBF, serial "
                                  "PettingZoo); false, or other envs (PettingZoo parallel=process): each seed steps "
                                  "its own env")


@dataclass
class ReplayConfig:
    capacity: int = opt(5000, "sequences kept", positive)
    batch_size: int = opt(32, "sequences per gradient step", positive)
    seq_len: Optional[int] = opt(None, "transitions per sequence; null = the env's time limit (whole episodes)",
                                 or_none(positive))
    burn_in: int = opt(0, "recurrent agents: steps at the start of a sequence that continues an episode which "
                          "only warm the hidden state (no gradient, not in the loss); < seq_len", non_negative)
    warmup: int = opt(32, "sequences in replay before the first update (at least batch_size)", non_negative)
    device: Optional[str] = opt(None, "where replay lives; null = the run's device", or_none(_device))

    def cross_check(self, prefix: str) -> None:
        if self.seq_len is not None and self.burn_in >= self.seq_len:
            raise ConfigError(f"{prefix}.burn_in ({self.burn_in}) must be smaller than {prefix}.seq_len "
                              f"({self.seq_len}): burn-in steps leave the loss")


@dataclass
class TrainConfig:
    updates_per_batch: Optional[int] = opt(8, "gradient steps per iteration (or updates_per_episode); replay-based "
                                              "algorithms only: on-policy ones make algorithm.epochs x "
                                              "algorithm.minibatches per rollout", or_none(positive))
    updates_per_episode: Optional[float] = opt(
        None, "gradient steps per episode finished in the iteration, PyMARL's ratio (1.0); fractions carry over "
              "to the next iteration. Set updates_per_batch=null with it", or_none(positive))
    max_seconds: Optional[float] = opt(
        None, "wall-clock budget in seconds, summed over resumes: the run stops at the end of the first iteration "
              "past it, with the final evaluation and final_model.pt as at total_frames (which still caps it); "
              "null = total_frames only", or_none(positive))
    max_skipped_updates: int = opt(0, "updates with a non-finite loss or gradient norm skipped (logged as "
                                      "train/skipped_updates) before the run stops with exit 3", non_negative)

    def cross_check(self, prefix: str) -> None:
        if (self.updates_per_batch is None) == (self.updates_per_episode is None):
            raise ConfigError(
                f"set exactly one of {prefix}.updates_per_batch and {prefix}.updates_per_episode (the other null), "
                f"got {self.updates_per_batch} and {self.updates_per_episode}")


@dataclass
class EvalConfig:
    interval_frames: int = opt(25000, "greedy decentralised evaluation every this many frames (0 = off)",
                               non_negative)
    episodes: int = opt(32, "evaluation episodes (parallel envs)", positive)
    final_episodes: Optional[int] = opt(None, "episodes of the last evaluation, the reported number (rounds of "
                                              "eval.episodes envs); null = eval.episodes", or_none(positive))
    max_steps: Optional[int] = opt(None, "step cap for envs without a time limit", or_none(positive))

    def cross_check(self, prefix: str) -> None:
        if self.final_episodes is not None and not self.interval_frames:
            raise ConfigError(f"{prefix}.final_episodes={self.final_episodes} needs evaluation on, but "
                              f"{prefix}.interval_frames is 0 (off): set one or {prefix}.final_episodes=null")


@dataclass
class CheckpointConfig:
    interval_frames: int = opt(100000, "frames between checkpoints", positive)
    save_buffer: bool = opt(False, "put the replay buffer in checkpoints (large)")


@dataclass
class WandbConfig:
    mode: str = opt("offline", "wandb mode", one_of("offline", "online", "disabled"))
    project: str = opt("marl-torchrl", "wandb project")


@dataclass
class RunConfig:
    """A whole training run: the groups ``algorithm`` and ``env`` plus the run's own keys.

    ``algorithm`` and ``env`` hold the dataclass of the chosen preset (see
    :mod:`marl_torchrl.config.algorithms` and :mod:`marl_torchrl.config.envs`).
    """

    algorithm: Any = MISSING
    env: Any = MISSING
    seed: int = opt(0, "seed of torch, the envs and the replay sampler", non_negative)
    num_seeds: int = opt(1, "train seeds seed, seed+1, ..., seed+num_seeds-1 at once in this process, their updates as "
                            "one batched computation; each seed runs as alone, in <run dir>/seed_<s> with a single "
                            "run's files (docs/stacked_seeds.md). > 1: iql, vdn, qmix, qmix_nonmono, pqn_iql, pqn_vdn, "
                            "pqn_qmix only",
                         _int_positive)
    device: str = opt("cpu", "where env, policy, replay and training live", _device)
    threads: Optional[int] = opt(1, "torch threads (small nets: 1 is fastest on CPU); null = torch's default",
                                 or_none(positive))
    total_frames: int = opt(500000, "env steps to collect (one frame = one step of one env)", positive)
    logger: List[str] = opt(["csv"], "loggers", subset_of(*LOGGERS))
    resume: Optional[str] = opt(None, "checkpoint to continue from, a run dir (its newest complete checkpoint), or "
                                      "auto: this run's own dir (skip it if finished, continue it if it holds a "
                                      "checkpoint, else start)")
    resume_buffer: bool = opt(False, "also restore the replay buffer (the checkpoint must hold one)")
    model: ModelConfig = opt(ModelConfig(), "the shared agent network")
    collector: CollectorConfig = opt(CollectorConfig(), "collection")
    replay: ReplayConfig = opt(ReplayConfig(), "sequence replay")
    train: TrainConfig = opt(TrainConfig(), "gradient steps")
    eval: EvalConfig = opt(EvalConfig(), "greedy evaluation")
    checkpoint: CheckpointConfig = opt(CheckpointConfig(), "checkpoints")
    wandb: WandbConfig = opt(WandbConfig(), "wandb logger")

    def cross_check(self, prefix: str) -> None:
        if self.resume_buffer and not self.resume:
            raise ConfigError("resume_buffer=true needs resume=<checkpoint>")
        if self.num_seeds > 1:
            check_stacked_seeds(self)
        elif self.resume and self.resume != "auto" and not Path(self.resume).is_file():
            from marl_torchrl.faults import newest_checkpoint

            if not Path(self.resume).is_dir():
                raise ConfigError(f"checkpoint not found: {self.resume} (resume=)")
            if newest_checkpoint(self.resume) is None:
                raise ConfigError(f"no complete checkpoint in {self.resume}/models to resume from (resume=)")
        num_envs = getattr(self.env, "num_envs", None)
        if isinstance(num_envs, int) and num_envs > 0 and self.collector.frames_per_batch % num_envs:
            raise ConfigError(f"collector.frames_per_batch ({self.collector.frames_per_batch}) must be a multiple "
                              f"of env.num_envs ({num_envs})")
        minibatches = getattr(self.algorithm, "minibatches", None)  # on-policy: minibatches of whole env rows
        if isinstance(num_envs, int) and isinstance(minibatches, int) and minibatches > 0 and num_envs % minibatches:
            raise ConfigError(f"algorithm.minibatches ({minibatches}) must divide env.num_envs ({num_envs}): "
                              "each minibatch is a group of whole env rows")


#: Mixers whose K copies run as one (``marl_torchrl.seeds.mixers``); None is IQL.
STACKED_MIXERS = (None, "vdn", "qmix", "nonmonotonic")


def seed_dir(run_dir: str | Path, seed: int) -> Path:
    """Where seed ``seed`` of a ``num_seeds > 1`` run keeps its files: ``<run dir>/seed_<seed>``.

    >>> seed_dir("runs/r1", 3).as_posix()
    'runs/r1/seed_3'
    """
    return Path(run_dir) / f"seed_{seed}"


def check_stacked_seeds(cfg: "RunConfig") -> None:
    """``num_seeds > 1``: what the stacked learner supports (value decomposition with a stackable mixer, from
    replay or PQN's rollouts), logged per seed (no wandb: one wandb run per process), resumed from the run dir
    of all the seeds (or ``resume=auto``, resolved against it when the run starts).

    >>> from marl_torchrl.config.algorithms import FACMACConfig
    >>> from marl_torchrl.config.pqn import PQNConfig
    >>> check_stacked_seeds(RunConfig(algorithm=PQNConfig(name="pqn_qmix", mixer="qmix"), num_seeds=2))
    >>> check_stacked_seeds(RunConfig(algorithm=FACMACConfig(name="facmac"), num_seeds=2))
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: num_seeds=2 supports algorithm=iql|vdn|qmix|qmix_nonmono|pqn_iql|pqn_vdn|pqn_qmix (value decomposition from replay or PQN, with mixer null, vdn, qmix or nonmonotonic), not facmac
    """
    from marl_torchrl.config.algorithms import ValueDecompositionConfig
    from marl_torchrl.config.pqn import PQNConfig

    algo, k = cfg.algorithm, cfg.num_seeds
    decomposes = type(algo) in (ValueDecompositionConfig, PQNConfig)
    if not decomposes or algo.mixer not in STACKED_MIXERS:
        name = getattr(algo, "name", type(algo).__name__)
        what = f"{name} (mixer {algo.mixer})" if decomposes else name
        raise ConfigError(f"num_seeds={k} supports algorithm=iql|vdn|qmix|qmix_nonmono|pqn_iql|pqn_vdn|pqn_qmix "
                          f"(value decomposition from replay or PQN, with mixer null, vdn, qmix or nonmonotonic), "
                          f"not {what}")
    if "wandb" in cfg.logger:
        raise ConfigError(f"num_seeds={k} cannot log to wandb (one wandb run per process); use logger=[csv,tensorboard]")
    if cfg.resume and cfg.resume != "auto":  # auto: resolved against the run dir (marl_torchrl.seeds.resume)
        from marl_torchrl.faults import newest_checkpoint

        if not Path(cfg.resume).is_dir():
            raise ConfigError(f"num_seeds={k} resumes from the run dir of all its seeds, not {cfg.resume} (resume=)")
        for seed in range(cfg.seed, cfg.seed + k):
            if newest_checkpoint(seed_dir(cfg.resume, seed)) is None:
                raise ConfigError(f"no complete checkpoint in {seed_dir(cfg.resume, seed)}/models to resume seed "
                                  f"{seed} from (resume=)")


@dataclass
class EvaluateConfig:
    """``python -m marl_torchrl.evaluate`` (``marl-evaluate``): greedy decentralised evaluation of a checkpoint."""

    checkpoint: str = opt(MISSING, "the checkpoint to evaluate (models/final_model.pt or checkpoint_<frames>.pt)")
    episodes: int = opt(32, "episodes, one per parallel env", positive)
    render: bool = opt(False, "also write a GIF of one episode (VMAS)")
    video: Optional[str] = opt(None, "where the GIF goes; null = <checkpoint>_eval.gif")
    device: str = opt("cpu", "where the env and policy run", _device)
    seed: Optional[int] = opt(None, "env seed; null = the run's seed", or_none(non_negative))
    max_steps: Optional[int] = opt(None, "step cap; null = the env's time limit (or 1000)", or_none(positive))
