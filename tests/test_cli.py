"""Bad input through the real command lines: one ``error: ...`` line on stderr, exit != 0, no training.

Every case runs ``python -m marl_torchrl.train ...`` (or ``python -m marl_torchrl.evaluate ...``) in a
subprocess with its own ``hydra.run.dir``. The subprocesses start all at once, as many at a time as
there are cores (each one is mostly import time), and each test reads its own result. The cases the typed
config refuses before Hydra starts (:data:`BEFORE_ANYTHING`) run the same entry point, ``train.main``, in
this process (they import nothing heavy, so a subprocess would time only Python's start); one of them,
:data:`ALSO_AS_A_PROCESS`, also runs as a real command line.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

# name -> (module, args, words the error line must contain). The "run dir" is passed as
# hydra.run.dir to train; evaluate gets none (it writes nothing).
CASES = {
    "unknown_algorithm": ("train", ["algorithm=qmx"], ["unknown algorithm", "qmx"]),
    "unknown_env": ("train", ["env=vmas/balanse"], ["unknown env", "vmas/balanse", "vmas/balance"]),
    "continuous_actions_for_qmix": (
        "train", ["algorithm=qmix", "env=vmas/balance", "env.continuous_actions=true"], ["continuous", "qmix"]
    ),
    "ragged_payoff": ("train", ["env=matrix/one_step", "env.payoff=[[1,2],[3]]"], ["payoff", "ragged"]),
    "two_step_payoff_not_2x2": (
        "train", ["env=matrix/two_step", "env.payoff_2a=[[1,2,3],[4,5,6]]"], ["payoff_2a", "2x2"]
    ),
    "missing_resume_checkpoint": ("train", ["resume=/nope/ckpt.pt"], ["checkpoint", "/nope/ckpt.pt"]),
    "unknown_logger": ("train", ["logger=[csv,mlflow]"], ["logger", "mlflow"]),
    "num_seeds_unsupported_algorithm": ("train", ["num_seeds=4", "algorithm=dop"], ["num_seeds=4", "dop"]),
    "num_seeds_zero": ("train", ["num_seeds=0"], ["num_seeds", "0"]),
    "both_target_updates": ("train", ["algorithm.target_tau=0.01"], ["target_hard_interval", "target_tau"]),
    "evaluate_missing_checkpoint": ("evaluate", ["checkpoint=/nope.pt"], ["checkpoint", "/nope.pt"]),
    "unknown_mixer": ("train", ["algorithm=facmac", "algorithm.mixer=qmx"], ["unknown mixer", "qmx", "nonmonotonic"]),
    "weighted_qmix_alpha_out_of_range": ("train", ["algorithm=ow_qmix", "algorithm.alpha=1.5"], ["alpha", "1.5"]),
    "dop_negative_temperature": ("train", ["algorithm=dop", "algorithm.alpha_init=-0.1"], ["alpha_init", "-0.1"]),
    "int_key_given_text": ("train", ["replay.batch_size=abc"], ["replay.batch_size", "abc"]),
    "int_key_given_bad_number": ("train", ["total_frames=1.5e3x"], ["total_frames", "1.5e3x"]),
    "unknown_top_level_key": ("train", ["no_such_key=1"], ["unknown key", "no_such_key", "total_frames"]),
    "unknown_algorithm_key": ("train", ["algorithm.lrr=0.1"], ["unknown key", "algorithm.lrr", "lr"]),
    "updates_given_text": ("train", ["train.updates_per_batch=many"], ["train.updates_per_batch", "many"]),
    "negative_burn_in": ("train", ["replay.burn_in=-1"], ["replay.burn_in", "-1"]),
    "burn_in_not_below_seq_len": ("train", ["replay.seq_len=5", "replay.burn_in=5"], ["replay.burn_in", "seq_len"]),
    "model_type_unknown": ("train", ["model.type=lstm"], ["model.type", "lstm"]),
    "weighted_key_on_qmix": ("train", ["algorithm=qmix", "algorithm.alpha=0.5"], ["unknown key", "algorithm.alpha"]),
}
# Refused by the typed config before Hydra starts: not even the run directory is created.
BEFORE_ANYTHING = {
    "unknown_algorithm", "unknown_env", "unknown_logger", "both_target_updates", "weighted_qmix_alpha_out_of_range",
    "dop_negative_temperature", "int_key_given_text", "int_key_given_bad_number", "unknown_top_level_key",
    "unknown_algorithm_key", "updates_given_text", "negative_burn_in", "burn_in_not_below_seq_len",
    "model_type_unknown", "weighted_key_on_qmix", "missing_resume_checkpoint",
}

ALSO_AS_A_PROCESS = "unknown_algorithm"

# Small budgets: if a check failed to fire, training would still end quickly (and the test says so).
TINY = [
    "threads=1", "env.num_envs=4", "env.max_steps=10", "collector.frames_per_batch=40", "total_frames=80",
    "replay.batch_size=4", "replay.warmup=4", "train.updates_per_batch=1", "eval.episodes=2",
    "eval.interval_frames=0", "model.hidden_dim=16",
]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    run_dir: Path


def _run_case(name: str, root: Path) -> Result:
    module, args, _ = CASES[name]
    case_dir = root / name
    run_dir = case_dir / "run"
    case_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", f"marl_torchrl.{module}", *args]
    if module == "train":
        argv += [*TINY, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "WANDB_MODE": "disabled", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(argv, cwd=case_dir, capture_output=True, text=True, timeout=120, env=env)
    return Result(proc.returncode, proc.stdout, proc.stderr, run_dir)


def _run_in_process(name: str, root: Path, monkeypatch) -> Result:
    """``train.main`` on the case's arguments, here: its exit status and what it printed."""
    from marl_torchrl.train import main

    _, args, _ = CASES[name]
    case_dir = root / f"{name}_in_process"
    run_dir = case_dir / "run"
    case_dir.mkdir(parents=True)
    monkeypatch.chdir(case_dir)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exited:
        main([*args, *TINY, f"hydra.run.dir={run_dir}"])
    return Result(exited.value.code, out.getvalue(), err.getvalue(), run_dir)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    processes = [n for n in CASES if n not in BEFORE_ANYTHING or n == ALSO_AS_A_PROCESS]
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        futures = {name: pool.submit(_run_case, name, root) for name in processes}
        with pytest.MonkeyPatch.context() as monkeypatch:
            here = {f"{n}_in_process": _run_in_process(n, root, monkeypatch) for n in BEFORE_ANYTHING}
        return {**{name: f.result() for name, f in futures.items()}, **here}


@pytest.mark.parametrize("name", [*CASES, f"{ALSO_AS_A_PROCESS}_in_process"])
def test_bad_input_is_one_error_line_and_no_training(name, results):
    key, name = name, name.removesuffix("_in_process")
    r = results.get(key) or results[f"{key}_in_process"]
    words = CASES[name][2]
    context = f"\n--- stdout:\n{r.stdout[-2000:]}\n--- stderr:\n{r.stderr[-4000:]}"
    assert r.returncode != 0, f"{name}: exited 0{context}"
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"{name}: expected exactly one stderr line, got {len(lines)}{context}"
    line = lines[0]
    assert line.startswith("error: ") and len(line) > len("error: "), f"{name}: {line!r}"
    for word in words:
        assert word in line, f"{name}: the error line does not name {word!r}: {line!r}"
    assert "Traceback" not in r.stdout + r.stderr
    # nothing trained: no models, no metrics
    assert not (r.run_dir / "models").exists(), f"{name}: a models/ dir appeared in {r.run_dir}"
    assert not (r.run_dir / "training_log.csv").exists(), f"{name}: a training_log.csv appeared"
    assert not (r.run_dir.parent / "runs").exists() and not (r.run_dir.parent / "outputs").exists()
    if name in BEFORE_ANYTHING:
        assert not r.run_dir.exists(), f"{name}: the run dir was created although the config check refuses it"


def test_help_lists_every_key_with_its_help(tmp_path):
    """``--help`` prints the chosen presets' keys with values and help lines, and writes nothing."""
    argv = [sys.executable, "-m", "marl_torchrl.train", "algorithm=ow_qmix", "--help"]
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for line in ("algorithm.alpha=0.1", "replay.burn_in=0", "env.scenario_kwargs=", "model.type=\"gru\""):
        assert line in proc.stdout, line
    assert "weight of down-weighted transitions" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_help_and_refusals_import_no_heavy_package():
    """The config is checked before torch, torchrl, vmas or jax is imported (what makes a refusal fast)."""
    code = ("import sys\nfrom marl_torchrl.train import main\n"
            "try:\n    main(['replay.batch_size=abc'])\nexcept SystemExit:\n    pass\n"
            "main(['--help'])\n"
            "heavy = [m for m in ('torch', 'torchrl', 'vmas', 'jax') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_every_case_exits_with_the_same_code(results):
    """Bad configuration is a usage error: one exit status for all of them (2, like argparse)."""
    codes = {name: r.returncode for name, r in results.items()}
    assert set(codes.values()) == {2}, codes


def test_console_scripts_exit_0_on_success(tmp_path, monkeypatch, capsys):
    """A console script's return value is its exit status (``sys.exit(main())``): on success each entry
    point returns None or 0 (``marl-evaluate`` once returned its metrics dict, so it printed it and exited 1)."""
    from importlib.metadata import entry_points

    from marl_torchrl.config import compose_config
    from marl_torchrl.train import run

    run(compose_config("algorithm=vdn", "env=matrix/two_step", "total_frames=64", "env.num_envs=8",
                       "collector.frames_per_batch=32", "replay.batch_size=4", "replay.warmup=4",
                       "eval.interval_frames=32", "eval.episodes=2", "model.hidden_dim=8"), tmp_path / "run")
    scripts = {e.name: e for e in entry_points(group="console_scripts") if e.name.startswith("marl-")}
    assert {"marl-train", "marl-evaluate", "marl-report"} <= set(scripts)
    for name, argv in [("marl-evaluate", [f"checkpoint={tmp_path / 'run' / 'models' / 'final_model.pt'}", "episodes=2"]),
                       ("marl-report", [str(tmp_path / "run"), "--out", str(tmp_path / "report"), "--reps", "20"])]:
        monkeypatch.setattr(sys, "argv", [name, *argv])
        assert scripts[name].load()() in (None, 0), name
    assert "eval/ep_reward" in capsys.readouterr().out
