"""``resume=auto`` for ``num_seeds=K``: a single run's ``resume=auto`` (:func:`~marl_torchrl.checkpoint.auto_resume`)
applied to each seed's own dir ``<run dir>/seed_<s>``, decided for the K seeds together, since they train in
lockstep (the same frames for all):

- every seed finished (its ``final_model.pt`` reaches the budget): the K-run is skipped, nothing written;
- every seed holds a complete checkpoint: each continues from its own newest one (``resume=<run dir>``);
- no seed holds one: every seed starts, each seed's stale ``training_log.csv`` dropped as a single run's;
- anything in between is refused in one line, before anything is built: some seeds with a checkpoint and
  some without (the K-run stopped while writing its first checkpoints, or ``num_seeds`` grew), or some seeds
  finished and some not (it stopped while writing its final models). Continuing some seeds and starting
  others would break the lockstep, and starting all again would throw away checkpoints; the line names the
  seeds and the way out (resume each unfinished seed alone, ``resume=<run dir>/seed_<s> num_seeds=1``).

>>> import tempfile
>>> from pathlib import Path
>>> from marl_torchrl.config import compose_config
>>> cfg = compose_config("algorithm=vdn", "env=matrix/one_step", "num_seeds=2", "seed=5", "resume=auto")
>>> run_dir = Path(tempfile.mkdtemp())
>>> new, lines = auto_resume_seeds(cfg, run_dir)
>>> new.resume is None, [line.replace(str(run_dir), "<dir>") for line in lines]
(True, ['resume=auto: no checkpoint in <dir>/seed_5; starting', 'resume=auto: no checkpoint in <dir>/seed_6; starting'])
>>> (run_dir / "seed_6" / "models").mkdir(parents=True)
>>> import zipfile; zipfile.ZipFile(run_dir / "seed_6" / "models" / "checkpoint_64.pt", "w").close()
>>> auto_resume_seeds(cfg, run_dir)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
marl_torchrl.registry.ConfigError: resume=auto: seed 6 of ... holds a checkpoint but seed 5 none (a K-run checkpoints all its seeds together: it stopped while writing them, or num_seeds changed); resume each seed with a checkpoint alone (resume=<run dir>/seed_<s> num_seeds=1), or delete ... of the seeds with one to start all again
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from marl_torchrl.checkpoint import auto_resume, run_status
from marl_torchrl.config import RunConfig
from marl_torchrl.config.run import seed_dir
from marl_torchrl.registry import ConfigError

__all__ = ["auto_resume_seeds"]


def _names(seeds: list[int]) -> str:
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))


def auto_resume_seeds(cfg: RunConfig, run_dir: str | os.PathLike) -> tuple[RunConfig | None, list[str]]:
    """Resolve ``resume=auto`` of a K-run in ``run_dir`` (see the module docstring): the config to run
    (``resume`` set to ``run_dir``, or null), or None when every seed is finished; and one line per seed
    saying which (:func:`~marl_torchrl.checkpoint.auto_resume`'s). Any other ``resume`` passes through
    unchanged, with no line. A mixed state is one :class:`ConfigError` line."""
    if cfg.resume != "auto":
        return cfg, []
    seeds = list(range(cfg.seed, cfg.seed + cfg.num_seeds))
    dirs = [seed_dir(run_dir, s) for s in seeds]
    states = [run_status(d, cfg.total_frames, cfg.train.max_seconds)[0] for d in dirs]
    fresh = [s for s, st in zip(seeds, states) if st == "fresh"]
    kept = [s for s in seeds if s not in fresh]
    if fresh and kept:
        raise ConfigError(
            f"resume=auto: {_names(kept)} of {run_dir} {'holds' if len(kept) == 1 else 'hold'} a checkpoint but "
            f"{_names(fresh)} none (a K-run checkpoints all its seeds together: it stopped while writing them, or "
            "num_seeds changed); resume each seed with a checkpoint alone (resume=<run dir>/seed_<s> num_seeds=1), "
            f"or delete {Path(run_dir)}/seed_<s>/models of the seeds with one to start all again")
    done = [s for s, st in zip(seeds, states) if st == "done"]
    if done and len(done) < len(seeds):
        rest = [s for s in seeds if s not in done]
        raise ConfigError(
            f"resume=auto: {_names(done)} of {run_dir} {'is' if len(done) == 1 else 'are'} finished but "
            f"{_names(rest)} not (the K-run stopped while writing its final models); resume each unfinished seed "
            "alone: resume=<run dir>/seed_<s> num_seeds=1 seed=<s>")
    lines = [auto_resume(dataclasses.replace(cfg, seed=s, num_seeds=1), d)[1] for s, d in zip(seeds, dirs)]
    if done:
        return None, lines
    if fresh:
        return dataclasses.replace(cfg, resume=None, resume_buffer=False), lines
    return dataclasses.replace(cfg, resume=str(run_dir)), lines
