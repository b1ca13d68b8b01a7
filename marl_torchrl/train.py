"""The Hydra entry point (``marl-train`` / ``python -m marl_torchrl.train``) and :func:`run`.

The command line is checked against the typed config before torch, torchrl, vmas or jax is imported:
a bad key, type, value or combination is one ``error: ...`` line naming the key, exit 2, and nothing is
built or written. ``--help`` lists every key with its default and help, just as fast.

    marl-train algorithm=qmix env=vmas/balance seed=0 total_frames=500000 logger=[csv,tensorboard]
    marl-train algorithm=vdn env=matrix/two_step total_frames=20000
    marl-train resume=runs/<run>/models/checkpoint_100000.pt total_frames=1000000
    marl-train -m algorithm=qmix,vdn seed=0,1 hydra.sweep.dir=sweeps/a resume=auto   # the same again: finished
                                                                                   # jobs skipped, the rest continued
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from marl_torchrl.config import CONFIG_DIR, compose_config, to_run_config
from marl_torchrl.config.launchers import JobFailure, check_launcher, failed_jobs, job_failed, launcher_of
from marl_torchrl.config.run import seed_dir
from marl_torchrl.config.store import register_schemas, untuned_note
from marl_torchrl.registry import ConfigError

# Hydra's own flags: these runs skip the pre-check (Hydra handles them; multirun jobs check themselves).
_HYDRA_FLAGS = ("-m", "--multirun", "--cfg", "-c", "--info", "--hydra-help", "--resolve", "--package", "-p",
                "--shell-completion", "-sc", "--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                "--experimental-rerun")


def run(cfg: Any, run_dir: str | Path) -> dict:
    """Train as configured (a :class:`~marl_torchrl.config.RunConfig` or a composed config); returns the
    last logged metrics, or ``{}`` when ``resume=auto`` finds the run finished. The run's files go to
    ``run_dir``; ``resume=auto`` prints which it did (skipped, continued or started). With ``num_seeds=K > 1``
    the K seeds train together (:mod:`marl_torchrl.seeds.loop`), each in ``run_dir/seed_<s>``, and the result
    is ``{seed: its last logged metrics}`` (``resume=auto`` decides for all seeds together,
    :mod:`marl_torchrl.seeds.resume`)."""
    cfg = to_run_config(cfg)
    if cfg.num_seeds > 1:
        from marl_torchrl.seeds.resume import auto_resume_seeds

        cfg, lines = auto_resume_seeds(cfg, run_dir)
        for line in lines:
            print(line, flush=True)
        if cfg is None:
            return {}
        from marl_torchrl.seeds.loop import setup_seeds, train_seeds

        return train_seeds(setup_seeds(cfg, Path(run_dir)))
    from marl_torchrl.checkpoint import auto_resume

    cfg, line = auto_resume(cfg, run_dir)
    if line:
        print(line, flush=True)
    if cfg is None:
        return {}
    from marl_torchrl.loop import setup, train

    return train(setup(cfg, Path(run_dir)))


def _fail(err: ConfigError) -> None:
    print(f"error: {err}", file=sys.stderr)
    raise SystemExit(2)


def resume_command(argv: list[str], run_dir: str | Path) -> str:
    """The command line that continues a run in its own dir (the other overrides kept).

    >>> resume_command(["algorithm=vdn", "resume=x.pt", "hydra.run.dir=old", "seed=3"], "runs/r1")
    'marl-train algorithm=vdn seed=3 resume=runs/r1 hydra.run.dir=runs/r1'
    """
    kept = [a for a in argv if a.split("=", 1)[0].lstrip("+~") not in ("resume", "hydra.run.dir")]
    return " ".join(["marl-train", *kept, f"resume={run_dir}", f"hydra.run.dir={run_dir}"])


def _hydra_entry(cfg) -> JobFailure | None:
    """Hydra's task: one run, each fault turned into its line and exit status. In a sweep (``-m``) a job
    that fails prints its line and returns it, the other jobs go on, and the sweep exits with the failed status
    (the launcher hands the returned failure back to the sweep process, :func:`failed_jobs`). A job in a
    worker process that is interrupted returns its failure too (:mod:`marl_torchrl.sweep_stop`)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from marl_torchrl import sweep_stop
    from marl_torchrl.faults import RunFault, RunInterrupted, newest_checkpoint

    hydra_cfg = HydraConfig.get()
    out = hydra_cfg.runtime.output_dir
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    worker = multirun and not sweep_stop.in_sweep_process()
    job = f"job {hydra_cfg.job.num} ({out})" if multirun else out  # a single run has no job number
    if multirun and sweep_stop.stopped(hydra_cfg.sweep.dir):
        return job_failed(130, f"{job}: not started: the sweep was interrupted")
    try:
        with sweep_stop.job_here():
            metrics = run(cfg, out)
    except RunInterrupted as err:
        if worker:
            return job_failed(err.exit_code, f"{job}: {err}")
        print(f"{err}; resume with: {resume_command(sys.argv[1:], out)}", file=sys.stderr)
        raise SystemExit(err.exit_code)
    except (ConfigError, RunFault) as err:
        code = getattr(err, "exit_code", 2)
        if multirun:
            return job_failed(code, f"error: {job}: {err}")
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(code)
    except KeyboardInterrupt:
        newest = newest_checkpoint(out)
        kept = f"the newest complete checkpoint is {newest}" if newest else "no checkpoint was written"
        if worker:
            return job_failed(130, f"{job}: interrupted before or during a checkpoint; {kept}")
        print(f"interrupted: exited at once; {kept}", file=sys.stderr)
        raise SystemExit(130)
    finally:
        if worker:
            sweep_stop.between_jobs()
    if not metrics:  # resume=auto: finished before, nothing trained
        return None
    if cfg.num_seeds > 1:
        for seed, seed_metrics in metrics.items():
            _done(seed_metrics, seed_dir(out, seed))
    else:
        _done(metrics, out)


def _done(metrics: dict[str, float], run_dir) -> None:
    shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith(("eval/", "rollout/ep_reward"))}
    print(f"done: {metrics.get('frames')} frames; {shown}; run dir {run_dir}")


def _run_dir_args(argv: list[str]) -> list[str]:
    """``resume=<run dir>`` continues in that dir unless ``hydra.run.dir=`` says otherwise; a run dir that
    cannot be created is refused here (Hydra would fail with a traceback)."""
    given = dict(a.split("=", 1) for a in argv if "=" in a)
    resume = given.get("resume")
    if resume and resume != "auto" and Path(resume).is_dir() and "hydra.run.dir" not in given:
        argv = [*argv, f"hydra.run.dir={resume}"]
        given["hydra.run.dir"] = resume
    target = Path(given.get("hydra.run.dir", "."))
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir() or not os.access(target, os.W_OK):
        raise ConfigError(f"cannot create the run dir {given.get('hydra.run.dir', 'runs/...')}: "
                          f"{target} is not a writable directory")
    return argv


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``--help`` and the config checks first (no heavy import), then Hydra."""
    argv = sys.argv[1:] if argv is None else argv
    overrides = [a for a in argv if not a.startswith("-")]
    try:
        check_launcher(argv)  # also with -m: a launcher plugin that is not installed, in one line
        if "--help" in argv or "-h" in argv:
            from marl_torchrl.config.help import help_text

            print(help_text(*[o for o in overrides if not o.startswith("hydra.")]))
            return
        if not any(a.split("=")[0] in _HYDRA_FLAGS for a in argv):
            cfg = compose_config(*[o for o in overrides if not o.startswith("hydra.")])
            note = untuned_note(overrides, cfg.algorithm.name)
            if note:
                print(note, file=sys.stderr)
            argv = _run_dir_args(argv)
    except ConfigError as err:
        _fail(err)
    import hydra

    register_schemas()
    sys.argv = [sys.argv[0], *argv]
    from marl_torchrl.sweep_stop import SweepInterrupts

    joblib_sweep = ("-m" in argv or "--multirun" in argv) and launcher_of(argv) == "joblib"
    with SweepInterrupts(active=joblib_sweep) as stop, failed_jobs(stop.launching) as failed:
        hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")(_hydra_entry)()
    if failed:
        raise SystemExit(max(f.status for f in failed))


if __name__ == "__main__":
    main()
