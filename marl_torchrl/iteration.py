"""The pieces of one training iteration that every loop shares: the single run's (:mod:`marl_torchrl.loop`)
and the stacked seeds' (:mod:`marl_torchrl.seeds.loop`, K runs whose updates are one computation).

Each takes a :class:`~marl_torchrl.loop.Run`: a collected batch into it (:func:`record_batch`), its
updates counted (:func:`note_update`, :func:`check_parameters`), the iteration finished with its metrics,
evaluation, log row and checkpoint (:func:`finish_iteration`), and its end (:func:`finished`, :func:`interrupt_checkpoint`,
:func:`close_run`).

>>> next_multiple(250, 100)
300
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from marl_torchrl.evaluate import evaluate_policy
from marl_torchrl.faults import NonFiniteError, WriteError
from marl_torchrl.logging import LoggerWriteError, plot_training
from marl_torchrl.rollout_stats import finished_episodes, finished_flags
from marl_torchrl.update import mean_logs, nonfinite_parameter

if TYPE_CHECKING:
    from marl_torchrl.loop import Run


def next_multiple(frames: int, interval: int) -> int:
    """The first multiple of ``interval`` above ``frames`` (the next eval/checkpoint point)."""
    return (frames // interval + 1) * interval


def rollout_metrics(run: Run, batch) -> dict[str, float]:
    """This batch's finished episodes' returns and lengths, and the env family's own episode metrics (its hook)."""
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


def note_update(run: Run, out: dict) -> None:
    """Count a skipped (non-finite) update of ``run``; past ``train.max_skipped_updates`` skips the run
    stops (:class:`~marl_torchrl.faults.NonFiniteError`)."""
    if "skipped" in out:
        run.state.skipped_updates += 1
        if run.state.skipped_updates > run.cfg.train.max_skipped_updates:
            metric = f"train/{out['nonfinite']}"
            raise NonFiniteError(metric, out[out["nonfinite"]].item(), run.state.iteration, run.last_checkpoint)


def check_parameters(run: Run) -> None:
    """Stop the run (:class:`~marl_torchrl.faults.NonFiniteError`) if a parameter is not finite."""
    bad = nonfinite_parameter(run.parts.loss)
    if bad is not None:
        raise NonFiniteError(f"parameter {bad}", float("nan"), run.state.iteration, run.last_checkpoint)


def record_batch(run: Run, batch) -> dict[str, float]:
    """A collected batch into the run: replay (or rollout), counters, exploration schedule; returns the
    iteration's rollout metrics."""
    run.parts.observe(batch)
    run.data.add(batch)
    frames = batch.numel()
    run.state.frames += frames
    run.state.iteration += 1
    run.parts.exploration_step(frames)
    metrics = rollout_metrics(run, batch)
    metrics.update(run.parts.exploration_metrics())
    metrics.update(run.parts.lr_metrics())
    return metrics


@dataclass
class IterationTimes:
    """Seconds of one iteration: collecting, training, the whole iteration, and since the loop started."""

    collect: float
    train: float
    total: float
    elapsed: float


def finish_iteration(run: Run, metrics: dict[str, float], train_logs: list[dict], frames: int,
                     times: IterationTimes) -> dict[str, float]:
    """The rest of an iteration after its updates: train and time metrics, the evaluation when due (the last
    iteration always evaluates), the log row, and the checkpoint when due; returns the row's metrics."""
    cfg, parts, s = run.cfg, run.parts, run.state
    s.num_updates += len(train_logs) - sum("skipped" in d for d in train_logs)
    metrics.update({f"train/{k}": v for k, v in mean_logs(train_logs).items()})  # one device read each
    metrics["train/num_updates"] = s.num_updates
    metrics["train/skipped_updates"] = s.skipped_updates
    metrics["time/collection_fps"] = frames / max(times.collect, 1e-9)
    if train_logs:
        metrics["time/updates_per_s"] = len(train_logs) / max(times.train, 1e-9)
    metrics["time/fps"] = frames / max(times.total, 1e-9)
    s.elapsed_s = run.elapsed_at_start + times.elapsed
    metrics["time/elapsed_s"] = s.elapsed_s
    last = finished(run)
    if run.next_eval is not None and (s.frames >= run.next_eval or last):
        max_steps = cfg.eval.max_steps or run.info.max_steps
        rounds = -(-cfg.eval.final_episodes // cfg.eval.episodes) if last and cfg.eval.final_episodes else 1
        metrics.update(evaluate_policy(run.eval_env, parts.policy, max_steps=max_steps, rounds=rounds,
                                       episode_metrics=run.info.episode_metrics))
        run.next_eval = next_multiple(s.frames, cfg.eval.interval_frames)
    try:  # before the checkpoint: a resume never misses a row
        run.loggers.log(metrics, step=s.iteration)
    except LoggerWriteError as err:
        kept = f"the last checkpoint {run.last_checkpoint} is intact" if run.last_checkpoint else \
            "no checkpoint was written"
        raise WriteError(f"{err}; {kept}") from None
    if s.frames >= run.next_ckpt:
        run.checkpoint(f"checkpoint_{s.frames}.pt")
        run.next_ckpt = next_multiple(s.frames, cfg.checkpoint.interval_frames)
    return metrics


def finished(run: Run) -> bool:
    """Whether ``run`` has spent its budget: ``total_frames``, or ``train.max_seconds`` of training."""
    return run.state.spent(run.cfg.total_frames, run.cfg.train.max_seconds)


def interrupt_checkpoint(run: Run) -> Path:
    """The checkpoint a stop signal leaves: this iteration's, written now unless it already was."""
    name = f"checkpoint_{run.state.frames}.pt"
    if run.last_checkpoint and run.last_checkpoint.name == name:
        return run.last_checkpoint
    return run.checkpoint(name)


def close_run(run: Run) -> None:
    """Close the loggers and draw the training plot (from the CSV log, where there is one)."""
    run.loggers.close()
    if (run.run_dir / "training_log.csv").exists():  # logger=[] (or without csv) writes none
        plot_training(run.run_dir / "training_log.csv", run.run_dir / "training_plots.png")
