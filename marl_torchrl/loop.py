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
from marl_torchrl.evaluate import evaluate_policy
from marl_torchrl.logging import LoggerWriteError, build_loggers, plot_training
from marl_torchrl.registry import ConfigError
from marl_torchrl.rollout_stats import finished_episodes, finished_flags
from marl_torchrl.faults import NonFiniteError, RunInterrupted, StopSignals, WriteError
from marl_torchrl.update import gradient_step, mean_logs, nonfinite_parameter


def resolve_device(name: str) -> torch.device:
    """``cpu``/``cuda``/``cuda:N``; asking for CUDA on a machine without it is an error, not a fallback."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda was asked for but torch sees no CUDA device on this machine")
    return device


def _next_multiple(frames: int, interval: int) -> int:
    """The first multiple of ``interval`` above ``frames`` (the next eval/checkpoint point)."""
    return (frames // interval + 1) * interval


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

    def checkpoint(self, name: str) -> Path:
        """Write ``models/<name>`` (never with a non-finite parameter); it becomes the last good state."""
        bad = nonfinite_parameter(self.parts.loss)
        if bad is not None:
            raise NonFiniteError(f"parameter {bad}", float("nan"), self.state.iteration, self.last_checkpoint)
        replay = self.data.replay if self.cfg.checkpoint.save_buffer else None
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


def _rollout_metrics(run: Run, batch) -> dict[str, float]:
    """Finished episodes' returns and lengths, and the env family's own episode metrics (its hook)."""
    returns, lengths = finished_episodes(batch)
    run.state.num_episodes += returns.numel()
    metrics = {"frames": run.state.frames, "rollout/num_episodes": run.state.num_episodes}
    if returns.numel():
        metrics.update({"rollout/ep_reward": returns.mean().item(), "rollout/ep_length": lengths.mean().item()})
        for name, key in run.info.episode_metrics.items():
            values = finished_flags(batch, key)
            if values is not None:
                metrics[f"rollout/{name}"] = values.float().mean().item()
    return metrics


def _updates(run: Run) -> list[dict]:
    """This iteration's gradient steps; a non-finite one is skipped, and past
    ``train.max_skipped_updates`` skips the run stops (:class:`~marl_torchrl.faults.NonFiniteError`)."""
    logs = []
    for batch in run.data.batches():
        out = gradient_step(run.parts, batch)
        logs.append(out)
        if "skipped" in out:
            run.state.skipped_updates += 1
            if run.state.skipped_updates > run.cfg.train.max_skipped_updates:
                metric = f"train/{out['nonfinite']}"
                raise NonFiniteError(metric, out[out["nonfinite"]].item(), run.state.iteration, run.last_checkpoint)
    bad = nonfinite_parameter(run.parts.loss)
    if bad is not None:
        raise NonFiniteError(f"parameter {bad}", float("nan"), run.state.iteration, run.last_checkpoint)
    return logs


def train(run: Run) -> dict[str, float]:
    """Collect and train until ``total_frames``; returns the last logged metrics.

    SIGINT or SIGTERM stops it at the end of the iteration with a checkpoint
    (:class:`~marl_torchrl.faults.RunInterrupted`); a second one exits at once. Any stop closes the loggers
    and draws the plot, except the second signal's."""
    cfg, parts, s = run.cfg, run.parts, run.state
    collector = Collector(run.env, parts.policy, frames_per_batch=cfg.collector.frames_per_batch,
                          total_frames=cfg.total_frames - s.frames, device=run.device, trust_policy=True)
    from tqdm import tqdm

    bar = tqdm(total=cfg.total_frames, initial=s.frames, unit="frames", dynamic_ncols=True,
               disable=not sys.stderr.isatty())
    next_eval = _next_multiple(s.frames, cfg.eval.interval_frames) if cfg.eval.interval_frames else None
    next_ckpt = _next_multiple(s.frames, cfg.checkpoint.interval_frames)
    t_start = t_mark = time.perf_counter()
    elapsed_before = s.elapsed_s
    metrics: dict[str, float] = {}
    at_once = False
    try:
        with StopSignals(quiet=False) as stop:
            for batch in collector:
                t_collected = time.perf_counter()
                run.data.add(batch)
                frames = batch.numel()
                s.frames += frames
                s.iteration += 1
                parts.exploration_step(frames)
                metrics = _rollout_metrics(run, batch)
                metrics.update(parts.exploration_metrics())
                t_train = time.perf_counter()
                train_logs = _updates(run)
                s.num_updates += len(train_logs) - sum("skipped" in d for d in train_logs)
                collector.update_policy_weights_()
                metrics.update({f"train/{k}": v for k, v in mean_logs(train_logs).items()})  # one device read each
                t_done = time.perf_counter()
                metrics["train/num_updates"] = s.num_updates
                metrics["train/skipped_updates"] = s.skipped_updates
                metrics["time/collection_fps"] = frames / max(t_collected - t_mark, 1e-9)
                if train_logs:
                    metrics["time/updates_per_s"] = len(train_logs) / max(t_done - t_train, 1e-9)
                metrics["time/fps"] = frames / max(t_done - t_mark, 1e-9)
                s.elapsed_s = elapsed_before + (t_done - t_start)
                metrics["time/elapsed_s"] = s.elapsed_s
                out_of_time = cfg.train.max_seconds is not None and s.elapsed_s >= cfg.train.max_seconds
                last = s.frames >= cfg.total_frames or out_of_time
                if next_eval is not None and (s.frames >= next_eval or last):  # the last iteration always evaluates
                    max_steps = cfg.eval.max_steps or run.info.max_steps
                    rounds = -(-cfg.eval.final_episodes // cfg.eval.episodes) if last and cfg.eval.final_episodes else 1
                    metrics.update(evaluate_policy(run.eval_env, parts.policy, max_steps=max_steps, rounds=rounds,
                                                   episode_metrics=run.info.episode_metrics))
                    next_eval = _next_multiple(s.frames, cfg.eval.interval_frames)
                try:  # before the checkpoint: a resume never misses a row
                    run.loggers.log(metrics, step=s.iteration)
                except LoggerWriteError as err:
                    kept = f"the last checkpoint {run.last_checkpoint} is intact" if run.last_checkpoint else \
                        "no checkpoint was written"
                    raise WriteError(f"{err}; {kept}") from None
                if s.frames >= next_ckpt:
                    run.checkpoint(f"checkpoint_{s.frames}.pt")
                    next_ckpt = _next_multiple(s.frames, cfg.checkpoint.interval_frames)
                bar.update(frames)
                shown = [k for k in ("rollout/ep_reward", "eval/ep_reward") if k in metrics]
                bar.set_postfix({k.split("/")[-1]: f"{metrics[k]:.3g}" for k in shown})
                t_mark = time.perf_counter()
                if stop.requested is not None and not last:
                    name = f"checkpoint_{s.frames}.pt"
                    path = run.last_checkpoint if run.last_checkpoint and run.last_checkpoint.name == name \
                        else run.checkpoint(name)
                    raise RunInterrupted(stop.requested, s.frames, path)
                if last:  # also before the collector's budget: train.max_seconds
                    break
            run.checkpoint("final_model.pt")
    except KeyboardInterrupt:
        at_once = True
        raise
    finally:
        collector.shutdown()
        bar.close()
        if not at_once:
            run.loggers.close()
            if (run.run_dir / "training_log.csv").exists():  # logger=[] (or without csv) writes none
                plot_training(run.run_dir / "training_log.csv", run.run_dir / "training_plots.png")
    return metrics
