"""Decentralised greedy evaluation: each agent acts from its own observation through the agent network.

No mixer and no global state are used: the policy reads only ``("agents", "observation")`` (plus its
own hidden state and the available-action mask). Command line::

    python -m marl_torchrl.evaluate checkpoint=runs/<run>/models/final_model.pt [episodes=32] \\
        [render=true] [video=eval.gif] [device=cpu] [seed=0]

prints the ``eval/*`` metrics and, with ``render=true``, writes a GIF of one episode where the env
can render (VMAS).
"""
from __future__ import annotations

import sys
from typing import Any

import torch
from omegaconf import OmegaConf
from torchrl.envs.utils import ExplorationType, set_exploration_type

from marl_torchrl.envs.render import RenderError
from marl_torchrl.registry import ConfigError
from marl_torchrl.rollout_stats import first_episode_flags, first_episodes

EVAL_MAX_STEPS = 1000  # cap for envs without a time limit


@torch.no_grad()
def evaluate_policy(env, policy, *, max_steps: int | None = None, episode_metrics=None,
                    rounds: int = 1) -> dict[str, float]:
    """Run every env of the batch for one greedy episode, ``rounds`` times over (each round starts new
    episodes); return ``eval/*`` metrics over all of them, and their number as ``eval/episodes``.

    ``episode_metrics`` (``{name: key}``, default: the env family's own, see
    :func:`~marl_torchrl.envs.face.episode_metric_keys`) adds ``eval/<name>`` for each.

    >>> import torch
    >>> from marl_torchrl.envs import make_env
    >>> env = make_env({"family": "matrix", "task": "two_step"}, num_envs=4)
    >>> from tensordict.nn import TensorDictModule
    >>> always_1 = TensorDictModule(lambda o: torch.ones(o.shape[:-1], dtype=torch.long),
    ...                             in_keys=[("agents", "observation")], out_keys=[("agents", "action")])
    >>> out = evaluate_policy(env, always_1, rounds=3)
    >>> out["eval/ep_reward"], out["eval/episodes"]
    (8.0, 12)
    """
    steps = max_steps or EVAL_MAX_STEPS
    if episode_metrics is None:
        from marl_torchrl.envs.face import episode_metric_keys

        episode_metrics = episode_metric_keys(env)
    returns, lengths, flags = [], [], {name: [] for name in episode_metrics}
    for _ in range(max(1, int(rounds))):
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            rollout = env.rollout(steps, policy, break_when_any_done=False, auto_cast_to_device=True)
        r, n = first_episodes(rollout)
        returns.append(r)
        lengths.append(n)
        for name, key in episode_metrics.items():
            values = first_episode_flags(rollout, key)
            if values is not None:
                flags[name].append(values.float())
    all_returns = torch.cat(returns)
    metrics = {
        "eval/ep_reward": all_returns.mean().item(),
        "eval/std_ep_reward": all_returns.std(unbiased=False).item(),
        "eval/ep_length": torch.cat(lengths).mean().item(),
        "eval/episodes": all_returns.numel(),
    }
    for name, values in flags.items():
        if values:
            metrics[f"eval/{name}"] = torch.cat(values).mean().item()
    return metrics


def load_parts(checkpoint: str, *, episodes: int, device: str = "cpu", seed: int | None = None):
    """Rebuild env and algorithm parts (policy, loss with its mixer...) from a checkpoint, weights only.
    Returns ``(env, parts, config, info)``; ``episodes`` envs, seeded ``seed`` (default: the run's)."""
    from marl_torchrl.algorithms import build_algorithm
    from marl_torchrl.checkpoint import RUN_KEYS, checkpoint_config, load_checkpoint, load_parts_state
    from marl_torchrl.envs import describe, make_env

    ckpt = load_checkpoint(checkpoint, map_location=device, run_keys=RUN_KEYS)
    cfg = checkpoint_config(ckpt, checkpoint)
    env = make_env(cfg.env, num_envs=episodes, device=device, seed=cfg.seed if seed is None else seed,
                   last_action=cfg.model.last_action)
    info = describe(env)
    parts = build_algorithm(cfg, info, device)
    for t in parts.env_transforms:
        env.append_transform(t)
    load_parts_state(parts, ckpt["parts"], weights_only=True, path=checkpoint)
    return env, parts, cfg, info


def load_policy(checkpoint: str, *, episodes: int, device: str = "cpu", seed: int | None = None):
    """Rebuild env and policy from a checkpoint (weights only). Returns ``(env, policy, config, info)``."""
    env, parts, cfg, info = load_parts(checkpoint, episodes=episodes, device=device, seed=seed)
    return env, parts.policy, cfg, info


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``key=value`` arguments of :class:`~marl_torchrl.config.run.EvaluateConfig`; bad ones are one ``error:`` line."""
    from marl_torchrl.config.coerce import as_config
    from marl_torchrl.config.run import EvaluateConfig

    try:
        try:
            given = OmegaConf.to_container(OmegaConf.from_cli(sys.argv[1:] if argv is None else argv))
        except Exception as err:  # noqa: BLE001 - a malformed argument, reported in one line
            raise ConfigError(f"cannot parse the arguments: {str(err).splitlines()[0]}") from None
        args = as_config(given, EvaluateConfig, "evaluate")
        env, policy, cfg, info = load_policy(args.checkpoint, episodes=args.episodes, device=args.device,
                                             seed=args.seed)
        metrics = evaluate_policy(env, policy, max_steps=args.max_steps or info.max_steps)
        for k, v in metrics.items():
            print(f"{k}: {v:.4f}")
        if args.render:
            from marl_torchrl.envs.render import render_frames, save_video

            video = args.video or str(args.checkpoint).rsplit(".", 1)[0] + "_eval.gif"
            with set_exploration_type(ExplorationType.DETERMINISTIC):
                frames = render_frames(env, policy, info.max_steps or EVAL_MAX_STEPS)
            save_video(frames, video)
            print(f"video: {video}")
            metrics["video"] = video
    except (ConfigError, RenderError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    return metrics

def cli() -> None:
    """The ``marl-evaluate`` console script: :func:`main` without its return value (a console script's
    return value becomes its exit status, and a dict would print itself and exit 1)."""
    main()


if __name__ == "__main__":
    cli()
