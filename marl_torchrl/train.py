"""The training loop and the Hydra entry point (``marl-train`` / ``python -m marl_torchrl.train``).

Data flows one way: env -> collector -> sequence builder -> replay -> loss -> optimisers -> target
update -> exploration schedule -> collector weights. Everything that can be misconfigured is built
and checked before the first frame is collected; a bad config is a one-line ``error: ...``, exit 2.

    marl-train algorithm=qmix env=vmas/balance seed=0 total_frames=500000 logger=[csv,tensorboard]
    marl-train algorithm=vdn env=matrix/two_step total_frames=20000
    marl-train resume=runs/<run>/models/checkpoint_100000.pt total_frames=1000000
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torchrl.collectors import Collector

from marl_torchrl import keys
from marl_torchrl.algorithms import build_algorithm
from marl_torchrl.checkpoint import load_checkpoint, load_parts_state, parts_state, rng_state, save_checkpoint
from marl_torchrl.checkpoint import set_rng_state
from marl_torchrl.config_checks import CONFIG_DIR, check_group_choices, resolve_device
from marl_torchrl.data import SequenceBuilder, make_sequence_replay
from marl_torchrl.envs import describe, make_env
from marl_torchrl.evaluate import evaluate_policy
from marl_torchrl.logging import build_loggers, plot_training
from marl_torchrl.registry import ConfigError
from marl_torchrl.rollout_stats import finished_episodes, finished_flags
from marl_torchrl.update import gradient_step, mean_logs


def _next_multiple(frames: int, interval: int) -> int:
    """The first multiple of ``interval`` above ``frames`` (the next eval/checkpoint point)."""
    return (frames // interval + 1) * interval


def _setup(cfg: DictConfig, run_dir: Path) -> dict:
    """Build and check every part; nothing is collected here."""
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
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
    seq_len = cfg.replay.seq_len or info.max_steps
    if not seq_len:
        raise ConfigError("this env has no time limit: set replay.seq_len (transitions per sequence)")
    s = dict(env=env, eval_env=eval_env, info=info, parts=parts, device=device)
    s["builder"] = SequenceBuilder(int(seq_len), hidden_key=parts.hidden_key)
    s["replay"] = make_sequence_replay(
        int(cfg.replay.capacity), int(cfg.replay.batch_size), device=cfg.replay.device or device
    )
    s["counters"] = {"frames": 0, "iteration": 0, "num_updates": 0, "num_episodes": 0}
    if cfg.resume:
        ckpt = load_checkpoint(cfg.resume, map_location=device)
        old = ckpt["config"]
        if (old["algorithm"]["name"], old["env"]["task"]) != (cfg.algorithm.name, cfg.env.task):
            raise ConfigError(
                f"checkpoint {cfg.resume} is {old['algorithm']['name']} on {old['env']['task']}, "
                f"not {cfg.algorithm.name} on {cfg.env.task}"
            )
        load_parts_state(parts, ckpt["parts"])
        s["counters"].update(ckpt["counters"])
        set_rng_state(ckpt["rng"])
        if cfg.resume_buffer:
            if "replay" not in ckpt:
                raise ConfigError(f"resume_buffer=true but {cfg.resume} holds no replay buffer")
            s["replay"].load_state_dict(ckpt["replay"])
    if s["counters"]["frames"] >= cfg.total_frames:
        raise ConfigError(f"nothing to do: {s['counters']['frames']} frames done >= total_frames={cfg.total_frames}")
    fpb = int(cfg.collector.frames_per_batch)
    if fpb % env.batch_size.numel():
        raise ConfigError(f"collector.frames_per_batch ({fpb}) must be a multiple of env.num_envs ({env.batch_size.numel()})")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    s["loggers"] = build_loggers(
        list(cfg.logger), run_dir, resolved, wandb_mode=cfg.wandb.mode, project=cfg.wandb.project,
        run_name=run_dir.name,
    )
    (run_dir / "configs").mkdir(parents=True, exist_ok=True)
    (run_dir / "configs" / "hparams.json").write_text(json.dumps(resolved, indent=2))
    s["resolved"] = resolved
    return s


def _checkpoint(s: dict, cfg: DictConfig, path: Path) -> None:
    payload = {
        "config": s["resolved"], "counters": dict(s["counters"]),
        "parts": parts_state(s["parts"]), "rng": rng_state(),
    }
    if cfg.checkpoint.save_buffer:
        payload["replay"] = s["replay"].state_dict()
    save_checkpoint(path, payload)


def run(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Train as configured; returns the last logged metrics."""
    run_dir = Path(run_dir)
    s = _setup(cfg, run_dir)
    parts, replay, builder, c = s["parts"], s["replay"], s["builder"], s["counters"]
    fpb = int(cfg.collector.frames_per_batch)
    collector = Collector(
        s["env"], parts.policy, frames_per_batch=fpb, total_frames=int(cfg.total_frames) - c["frames"],
        device=s["device"], trust_policy=True,
    )
    from tqdm import tqdm

    bar = tqdm(total=int(cfg.total_frames), initial=c["frames"], unit="frames", dynamic_ncols=True,
               disable=not sys.stderr.isatty())
    next_eval = _next_multiple(c["frames"], cfg.eval.interval_frames) if cfg.eval.interval_frames else None
    next_ckpt = _next_multiple(c["frames"], cfg.checkpoint.interval_frames)
    t_start, t_mark, metrics = time.perf_counter(), time.perf_counter(), {}
    warmup = max(int(cfg.replay.warmup), int(cfg.replay.batch_size))
    for batch in collector:
        t_collected = time.perf_counter()
        seqs = builder.add(batch)
        if seqs is not None:
            replay.extend(seqs.to(replay.storage.device))
        frames = batch.numel()
        c["frames"] += frames
        c["iteration"] += 1
        parts.exploration_step(frames)
        returns, lengths = finished_episodes(batch)
        c["num_episodes"] += returns.numel()
        metrics = {"frames": c["frames"], "rollout/num_episodes": c["num_episodes"]}
        if returns.numel():
            metrics.update({"rollout/ep_reward": returns.mean().item(), "rollout/ep_length": lengths.mean().item()})
            won = finished_flags(batch, keys.BATTLE_WON)
            if won is not None:
                metrics["rollout/battle_won"] = won.mean().item()
        metrics.update(parts.exploration_metrics())
        t_train = time.perf_counter()
        n_upd = int(cfg.train.updates_per_batch) if len(replay) >= warmup else 0
        train_logs = [gradient_step(parts, replay.sample()) for _ in range(n_upd)]
        c["num_updates"] += n_upd
        collector.update_policy_weights_()
        train_metrics = mean_logs(train_logs)  # reads the device once per metric (and waits for it)
        t_done = time.perf_counter()
        metrics.update({f"train/{name}": v for name, v in train_metrics.items()})
        metrics["train/num_updates"] = c["num_updates"]
        metrics["time/collection_fps"] = frames / max(t_collected - t_mark, 1e-9)
        if n_upd:
            metrics["time/updates_per_s"] = n_upd / max(t_done - t_train, 1e-9)
        metrics["time/fps"] = frames / max(t_done - t_mark, 1e-9)
        metrics["time/elapsed_s"] = t_done - t_start
        last = c["frames"] >= cfg.total_frames
        if next_eval is not None and (c["frames"] >= next_eval or last):  # the last iteration always evaluates
            metrics.update(evaluate_policy(s["eval_env"], parts.policy, max_steps=cfg.eval.max_steps or s["info"].max_steps))
            next_eval = _next_multiple(c["frames"], cfg.eval.interval_frames)
        if c["frames"] >= next_ckpt:
            _checkpoint(s, cfg, run_dir / "models" / f"checkpoint_{c['frames']}.pt")
            next_ckpt = _next_multiple(c["frames"], cfg.checkpoint.interval_frames)
        s["loggers"].log(metrics, step=c["iteration"])
        bar.update(frames)
        bar.set_postfix({k.split("/")[-1]: f"{metrics[k]:.3g}" for k in ("rollout/ep_reward", "eval/ep_reward") if k in metrics})
        t_mark = time.perf_counter()
    collector.shutdown()
    bar.close()
    _checkpoint(s, cfg, run_dir / "models" / "final_model.pt")
    s["loggers"].close()
    plot_training(run_dir / "training_log.csv", run_dir / "training_plots.png")
    return metrics


def _hydra_entry(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        metrics = run(cfg, HydraConfig.get().runtime.output_dir)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith(("eval/", "rollout/ep_reward"))}
    print(f"done: {metrics.get('frames')} frames; {shown}; run dir {HydraConfig.get().runtime.output_dir}")


def main() -> None:
    """Console entry point: one-line checks first, then Hydra."""
    import hydra

    try:
        check_group_choices(sys.argv[1:])
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")(_hydra_entry)()


if __name__ == "__main__":
    main()
