"""The training loop: one run of a checked :class:`~marl_torchrl.config.RunConfig`.

Data flows one way: env -> collector -> data path (sequence replay, or the rollout itself for on-policy
algorithms) -> loss -> optimisers -> target update -> exploration schedule -> collector weights.
Everything that can be misconfigured is built and checked before the first frame is collected.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torchrl.collectors import Collector

from marl_torchrl.algorithms import AlgorithmParts, build_algorithm
from marl_torchrl.checkpoint import RunState, resume_run, save_run
from marl_torchrl.config import RunConfig
from marl_torchrl.data import ReplayPath, RolloutPath, SequenceBuilder
from marl_torchrl.envs import EnvSpecInfo, describe, make_env
from marl_torchrl.faults import NonFiniteError, RunInterrupted, StopSignals
from marl_torchrl.iteration import (
    IterationTimes, check_parameters, close_run, finish_iteration, finished, interrupt_checkpoint, next_multiple,
    note_update, record_batch,
)
from marl_torchrl.logging import build_loggers
from marl_torchrl.registry import ConfigError
from marl_torchrl.update import gradient_step, nonfinite_parameter


def resolve_device(name: str) -> torch.device:
    """``cpu``/``cuda``/``cuda:N``; asking for CUDA on a machine without it is an error, not a fallback."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda was asked for but torch sees no CUDA device on this machine")
    return device


@dataclass
class Run:
    """Everything one run holds: its config, env(s), parts, data path, loggers and counters."""

    cfg: RunConfig
    run_dir: Path
    device: torch.device
    env: Any
    eval_env: Any
    info: EnvSpecInfo
    parts: AlgorithmParts
    data: ReplayPath | RolloutPath
    state: RunState
    loggers: Any = None
    last_checkpoint: Path | None = None
    next_eval: int | None = None  # frames of the next evaluation (None: off), see start_schedule
    next_ckpt: int = 0  # frames of the next checkpoint
    elapsed_at_start: float = 0.0  # RunState.elapsed_s when this process's loop started, see start_schedule

    def checkpoint(self, name: str) -> Path:
        """Write ``models/<name>`` (never with a non-finite parameter); it becomes the last good state."""
        bad = nonfinite_parameter(self.parts.loss)
        if bad is not None:
            raise NonFiniteError(f"parameter {bad}", float("nan"), self.state.iteration, self.last_checkpoint)
        replay = self.data.replay if self.cfg.checkpoint.save_buffer else None
        self.state.updates_owed = self.data.owed
        path = self.run_dir / "models" / name
        save_run(path, self.cfg, self.state, self.parts, replay, previous=self.last_checkpoint)
        self.last_checkpoint = path
        return path


def _data_path(cfg: RunConfig, info: EnvSpecInfo, parts: AlgorithmParts, device) -> ReplayPath | RolloutPath:
    if parts.rollout is not None:
        return RolloutPath(parts.rollout.epochs, parts.rollout.minibatches)
    seq_len = cfg.replay.seq_len or info.max_steps
    if not seq_len:
        raise ConfigError("this env has no time limit: set replay.seq_len (transitions per sequence)")
    if cfg.replay.burn_in >= seq_len:
        raise ConfigError(f"replay.burn_in ({cfg.replay.burn_in}) must be smaller than the sequence length ({seq_len})")
    return ReplayPath(SequenceBuilder(int(seq_len), hidden_key=parts.hidden_key), capacity=cfg.replay.capacity,
                      batch_size=cfg.replay.batch_size, warmup=cfg.replay.warmup,
                      updates=cfg.train.updates_per_batch,
                      updates_per_episode=cfg.train.updates_per_episode, device=cfg.replay.device or device)


def setup(cfg: RunConfig, run_dir: Path) -> Run:
    """Build and check every part; nothing is collected here."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    env = make_env(cfg.env, device=device, seed=cfg.seed, last_action=cfg.model.last_action)
    info = describe(env)
    parts = build_algorithm(cfg, info, device)
    eval_env = None
    if cfg.eval.interval_frames:
        eval_env = make_env(cfg.env, num_envs=cfg.eval.episodes, device=device, seed=cfg.seed + 10_000,
                            last_action=cfg.model.last_action)
    for t in parts.env_transforms:
        env.append_transform(t)
        if eval_env is not None:
            eval_env.append_transform(t.clone())
    data = _data_path(cfg, info, parts, device)
    state, resumed_from = resume_run(cfg, parts, data.replay, device)
    data.owed = state.updates_owed
    if state.frames >= cfg.total_frames:
        raise ConfigError(f"nothing to do: {state.frames} frames done >= total_frames={cfg.total_frames}")
    if cfg.train.max_seconds is not None and state.elapsed_s >= cfg.train.max_seconds:
        raise ConfigError(f"nothing to do: {state.elapsed_s:.0f} s trained >= train.max_seconds={cfg.train.max_seconds:g}")
    resolved = dataclasses.asdict(cfg)
    try:
        (run_dir / "configs").mkdir(parents=True, exist_ok=True)
        (run_dir / "configs" / "hparams.json").write_text(json.dumps(resolved, indent=2))
    except OSError as err:
        raise ConfigError(f"cannot write to the run dir {run_dir}: {err.strerror or err}") from None
    loggers = build_loggers(list(cfg.logger), run_dir, resolved, wandb_mode=cfg.wandb.mode, project=cfg.wandb.project,
                            run_name=run_dir.name, resume_step=state.iteration if resumed_from else None)
    return Run(cfg, run_dir, device, env, eval_env, info, parts, data, state, loggers, last_checkpoint=resumed_from)


def _updates(run: Run) -> list[dict]:
    """This iteration's gradient steps; a non-finite one is skipped (:func:`note_update`)."""
    logs = []
    for batch in run.data.batches():
        out = gradient_step(run.parts, batch)
        logs.append(out)
        note_update(run, out)
    check_parameters(run)
    return logs


def make_collector(run: Run, env=None, policy=None, copies: int = 1) -> Collector:
    """The run's collector, for the frames left to collect (it resets the env: draws from torch's generator).
    ``env``/``policy``/``copies``: ``copies`` runs like it collecting together (K seeds' batched env and
    stacked policy), ``copies`` times the frames per batch and in all."""
    frames = run.cfg.collector.frames_per_batch, run.cfg.total_frames - run.state.frames
    return Collector(env or run.env, policy or run.parts.policy, frames_per_batch=copies * frames[0],
                     total_frames=copies * frames[1], device=run.device, trust_policy=True)


def start_schedule(run: Run) -> None:
    """The next evaluation and checkpoint points after the frames done (a resumed run continues its own)."""
    s, cfg = run.state, run.cfg
    run.next_eval = next_multiple(s.frames, cfg.eval.interval_frames) if cfg.eval.interval_frames else None
    run.next_ckpt = next_multiple(s.frames, cfg.checkpoint.interval_frames)
    run.elapsed_at_start = s.elapsed_s


def train(run: Run) -> dict[str, float]:
    """Collect and train until ``total_frames``; returns the last logged metrics.

    SIGINT or SIGTERM stops it at the end of the iteration with a checkpoint
    (:class:`~marl_torchrl.faults.RunInterrupted`); a second one exits at once. Any stop closes the loggers
    and draws the plot, except the second signal's."""
    cfg, s = run.cfg, run.state
    collector = make_collector(run)
    from tqdm import tqdm

    bar = tqdm(total=cfg.total_frames, initial=s.frames, unit="frames", dynamic_ncols=True,
               disable=not sys.stderr.isatty())
    start_schedule(run)
    t_start = t_mark = time.perf_counter()
    metrics: dict[str, float] = {}
    at_once = False
    try:
        with StopSignals(quiet=False) as stop:
            for batch in collector:
                t_collected = time.perf_counter()
                metrics = record_batch(run, batch)
                t_train = time.perf_counter()
                train_logs = _updates(run)
                collector.update_policy_weights_()
                t_done = time.perf_counter()
                times = IterationTimes(t_collected - t_mark, t_done - t_train, t_done - t_mark, t_done - t_start)
                metrics = finish_iteration(run, metrics, train_logs, batch.numel(), times)
                bar.update(batch.numel())
                shown = [k for k in ("rollout/ep_reward", "eval/ep_reward") if k in metrics]
                bar.set_postfix({k.split("/")[-1]: f"{metrics[k]:.3g}" for k in shown})
                t_mark = time.perf_counter()
                done = finished(run)
                if stop.requested is not None and not done:
                    raise RunInterrupted(stop.requested, s.frames, interrupt_checkpoint(run))
                if done:  # also before the collector's budget: train.max_seconds
                    break
            run.checkpoint("final_model.pt")
    except KeyboardInterrupt:
        at_once = True
        raise
    finally:
        collector.shutdown()
        bar.close()
        if not at_once:
            close_run(run)
    return metrics
