"""Checkpoints: the run's state, and everything needed to evaluate a run or continue it.

A checkpoint is one ``torch.save`` file holding the resolved config (with the names of its algorithm and
env schemas), the :class:`RunState` counters, the loss module's state (online and target networks), the
optimisers, the target updater, the exploration state, the RNG states and, optionally, the replay
buffer. :func:`resume_run` is the one place that continues a run from one; :func:`auto_resume` decides,
for ``resume=auto``, whether a run dir is finished, continued or started.

>>> import tempfile, os, torch
>>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
>>> save_checkpoint(path, {"config": {"seed": 0}, "counters": {"frames": 10}})
>>> RunState.from_dict(load_checkpoint(path)["counters"]).frames
10
>>> load_checkpoint(path + ".missing")
Traceback (most recent call last):
...
marl_torchrl.registry.ConfigError: checkpoint not found: ....missing
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from marl_torchrl.algorithms.base import AlgorithmParts
from marl_torchrl.config import RunConfig, schema_name
from marl_torchrl.faults import WriteError, is_complete, newest_checkpoint
from marl_torchrl.registry import ConfigError


@dataclass
class RunState:
    """The counters a run carries from iteration to iteration and across a resume.

    >>> s = RunState(); s.frames += 40; s.as_dict()  # doctest: +NORMALIZE_WHITESPACE
    {'frames': 40, 'iteration': 0, 'num_updates': 0, 'num_episodes': 0, 'skipped_updates': 0,
     'elapsed_s': 0.0, 'updates_owed': 0.0}
    """

    frames: int = 0
    iteration: int = 0
    num_updates: int = 0
    num_episodes: int = 0
    skipped_updates: int = 0
    elapsed_s: float = 0.0  # wall-clock seconds of training, summed over resumes (train.max_seconds)
    updates_owed: float = 0.0  # train.updates_per_episode: the fraction of an update earned, not yet made

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    def spent(self, total_frames: int, max_seconds: float | None = None) -> bool:
        """Whether these counters have used up a budget of ``total_frames`` or ``max_seconds`` of training.

        >>> RunState(frames=40, elapsed_s=9.0).spent(80), RunState(frames=40, elapsed_s=9.0).spent(80, 5.0)
        (False, True)
        """
        return self.frames >= total_frames or (max_seconds is not None and self.elapsed_s >= max_seconds)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunState":
        return cls(**{f.name: (float if f.type == "float" else int)(values.get(f.name, 0))
                      for f in dataclasses.fields(cls)})


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any], previous: str | os.PathLike | None = None) -> None:
    """Write atomically: to ``<path>.tmp``, then renamed. A crash, a second Ctrl-C or a full disk
    mid-write never leaves a partial file (the temporary one is removed); a failed write is a one-line
    :class:`~marl_torchrl.faults.WriteError` naming ``previous``, the checkpoint still intact."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except OSError as err:
        kept = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint"
        raise WriteError(f"cannot write checkpoint {path}: {err.strerror or err}; {kept}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


RUN_KEYS = ("config", "counters", "parts", "rng")  # what a run's checkpoint holds (save_run)


def load_checkpoint(path: str | os.PathLike, map_location="cpu", *, run_keys: tuple = ()) -> dict[str, Any]:
    """Load a checkpoint; a missing, cut-off or unreadable file, or one without the ``run_keys`` a run's
    checkpoint holds, is a one-line :class:`ConfigError` naming it."""
    if not Path(path).is_file():
        raise ConfigError(f"checkpoint not found: {path}")
    if not is_complete(Path(path)):
        raise ConfigError(f"cannot read checkpoint {path}: the file is cut off or is not a checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001 - report any unpickling problem in one line
        raise ConfigError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from err
    missing = [k for k in run_keys if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ConfigError(f"{path} is not a marl-torchrl run checkpoint (it has no {', '.join(missing)})")
    return ckpt


def checkpoint_config(ckpt: dict[str, Any], path: str | os.PathLike = "the checkpoint") -> RunConfig:
    """The checked :class:`RunConfig` a checkpoint was written with (one line if this version cannot read it)."""
    from marl_torchrl.config import run_config_from_dict

    try:
        if not isinstance(ckpt.get("config"), dict):
            raise ConfigError("it holds no config")
        return run_config_from_dict(ckpt["config"], ckpt.get("schemas"))
    except ConfigError as err:
        raise ConfigError(f"{path} holds a config this version does not accept: {err}") from None


def save_run(path: str | os.PathLike, cfg: RunConfig, state: RunState, parts: AlgorithmParts, replay=None,
             previous: str | os.PathLike | None = None) -> None:
    """Checkpoint a run: config and schema names, counters, parts, RNG and (given) the replay buffer."""
    payload = {
        "config": dataclasses.asdict(cfg),
        "schemas": {"algorithm": schema_name(cfg.algorithm, "algorithm"), "env": schema_name(cfg.env, "env")},
        "counters": state.as_dict(), "parts": parts_state(parts), "rng": rng_state(),
    }
    if replay is not None:
        payload["replay"] = replay.state_dict()
    save_checkpoint(path, payload, previous)


def resume_run(cfg: RunConfig, parts: AlgorithmParts, replay, device) -> tuple[RunState, Path | None]:
    """Continue from ``cfg.resume`` (a checkpoint, or a run dir: its newest complete checkpoint): same
    algorithm and env, parts, counters, RNG and (``resume_buffer``) the replay buffer. Returns the counters
    and the checkpoint used; a fresh :class:`RunState` and None when ``cfg.resume`` is null."""
    if not cfg.resume:
        return RunState(), None
    path = Path(cfg.resume)
    if path.is_dir():
        path = newest_checkpoint(path)
        if path is None:
            raise ConfigError(f"no complete checkpoint in {cfg.resume}/models to resume from")
    ckpt = load_checkpoint(path, map_location=device, run_keys=RUN_KEYS)
    old = checkpoint_config(ckpt, path)
    if (old.algorithm.name, old.env.task) != (cfg.algorithm.name, cfg.env.task):
        raise ConfigError(
            f"checkpoint {path} is {old.algorithm.name} on {old.env.task}, not {cfg.algorithm.name} on {cfg.env.task}"
        )
    load_parts_state(parts, ckpt["parts"], path=path)
    set_rng_state(ckpt["rng"])
    if cfg.resume_buffer:
        if "replay" not in ckpt:
            raise ConfigError(f"resume_buffer=true but {path} holds no replay buffer")
        if replay is None:
            raise ConfigError(f"resume_buffer=true but algorithm '{cfg.algorithm.name}' keeps no replay buffer")
        replay.load_state_dict(ckpt["replay"])
    return RunState.from_dict(ckpt["counters"]), path


def run_status(run_dir: str | os.PathLike, total_frames: int,
               max_seconds: float | None = None) -> tuple[str, Path | None]:
    """What ``resume=auto`` does with ``run_dir`` for a budget of ``total_frames`` (and ``train.max_seconds``):
    ``("done", final model)`` when ``models/final_model.pt`` is complete and holds at least ``total_frames``
    frames or ``max_seconds`` of training; ``("resume",
    newest complete checkpoint)`` when there is one (a final model of a smaller budget counts); else
    ``("fresh", None)``."""
    final = Path(run_dir) / "models" / "final_model.pt"
    if is_complete(final):
        try:
            counters = RunState.from_dict(load_checkpoint(final, run_keys=("counters",))["counters"])
        except ConfigError:  # unreadable: never done; resume picks the newest readable one or fails
            counters = RunState(frames=-1, elapsed_s=-math.inf)
        if counters.spent(total_frames, max_seconds):
            return "done", final
    newest = newest_checkpoint(run_dir)
    return ("resume", newest) if newest else ("fresh", None)


def auto_resume(cfg: RunConfig, run_dir: str | os.PathLike) -> tuple[RunConfig | None, str]:
    """Resolve ``resume=auto`` against the run's own dir (see :func:`run_status`): the config to run
    (``resume`` set to the dir, or null), or None when the run is finished; and a line saying which. A
    fresh start drops a stale ``training_log.csv`` (a run stopped before its first checkpoint), so the
    new log holds only the new run. Any other ``resume`` passes through unchanged, with an empty line."""
    if cfg.resume != "auto":
        return cfg, ""
    state, path = run_status(run_dir, cfg.total_frames, cfg.train.max_seconds)
    if state == "done":
        budget = f"total_frames={cfg.total_frames}" + (f" or train.max_seconds={cfg.train.max_seconds:g}"
                                                       if cfg.train.max_seconds is not None else "")
        return None, f"resume=auto: {run_dir} is finished ({path} reaches {budget}); skipped"
    if state == "resume":
        return dataclasses.replace(cfg, resume=str(run_dir)), f"resume=auto: continuing {run_dir} from {path}"
    stale = Path(run_dir) / "training_log.csv"
    note = f"resume=auto: no checkpoint in {run_dir}; starting"
    if stale.is_file():
        stale.unlink()
        note += " (its stale training_log.csv removed)"
    return dataclasses.replace(cfg, resume=None, resume_buffer=False), note


def parts_state(parts: AlgorithmParts) -> dict[str, Any]:
    """The learnable and schedule state of an algorithm's parts."""
    return {
        "loss": parts.loss.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in parts.optimizers.items()},
        "target_updater": parts.target_updater.state_dict(),
        "modules": {k: m.state_dict() for k, m in parts.modules.items()},
    }


def load_parts_state(parts: AlgorithmParts, state: dict[str, Any], *, weights_only: bool = False,
                     path: str | os.PathLike = "the checkpoint") -> None:
    """Restore :func:`parts_state` output; ``weights_only`` restores just the networks (evaluation).
    Networks of another shape, or missing parts, are a one-line :class:`ConfigError` naming ``path``."""
    try:
        parts.loss.load_state_dict(state["loss"])
        if weights_only:
            return
        for k, o in parts.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        parts.target_updater.load_state_dict(state["target_updater"])
        for k, m in parts.modules.items():
            m.load_state_dict(state["modules"][k])
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        raise ConfigError(f"{path} does not fit this config's networks: {str(err).strip().splitlines()[0]}") from None


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
