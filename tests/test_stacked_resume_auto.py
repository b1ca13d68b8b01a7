"""``num_seeds=K resume=auto`` (issue 19): a single run's ``resume=auto`` per seed, decided for the K seeds together.
A K = 2 run of a tiny matrix game started, skipped when finished, continued when interrupted, and refused in
one line when its seeds disagree (some with a checkpoint and some without, some finished and some not)."""
from __future__ import annotations

import csv
import shutil

import pytest

from marl_torchrl.config import compose_config
from marl_torchrl.config.run import seed_dir
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run

TINY = ["algorithm=vdn", "env=matrix/two_step", "env.num_envs=8", "collector.frames_per_batch=32",
        "replay.batch_size=4", "replay.warmup=4", "eval.interval_frames=0", "model.hidden_dim=8",
        "train.updates_per_batch=2", "checkpoint.interval_frames=64", "num_seeds=2", "seed=3"]
SEEDS = (3, 4)


def _auto(run_dir, frames, capsys):
    metrics = run(compose_config(*TINY, f"total_frames={frames}", "resume=auto"), run_dir)
    return metrics, [line for line in capsys.readouterr().out.splitlines() if line.startswith("resume=auto:")]


def _rows(d):
    with open(d / "training_log.csv") as f:
        return [int(float(r["frames"])) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A K = 2 run of 128 frames started by resume=auto in a dir where seed 4 left a stale log."""
    root = tmp_path_factory.mktemp("auto")
    seed_dir(root, 4).mkdir(parents=True)
    (seed_dir(root, 4) / "training_log.csv").write_text("step,frames\n1,32\n2,64\n3,96\n")
    metrics = run(compose_config(*TINY, "total_frames=128", "resume=auto"), root)
    return root, metrics


def test_compose_takes_resume_auto():
    assert compose_config(*TINY, "resume=auto").resume == "auto"


def test_a_fresh_k_run_starts_every_seed(finished):
    root, metrics = finished
    assert {s: m["frames"] for s, m in metrics.items()} == {3: 128, 4: 128}
    assert [_rows(seed_dir(root, s)) for s in SEEDS] == [[32, 64, 96, 128]] * 2  # seed 4's stale rows dropped


def test_a_finished_k_run_is_skipped_untouched(finished, capsys):
    root, _ = finished
    finals = [seed_dir(root, s) / "models" / "final_model.pt" for s in SEEDS]
    before = [f.stat().st_mtime_ns for f in finals]
    metrics, lines = _auto(root, 128, capsys)
    assert metrics == {}
    assert lines == [f"resume=auto: {seed_dir(root, s)} is finished ({f} reaches total_frames=128); skipped"
                     for s, f in zip(SEEDS, finals)]
    assert [f.stat().st_mtime_ns for f in finals] == before


def test_an_interrupted_k_run_continues_every_seed(finished, tmp_path, capsys):
    root = tmp_path / "k"
    shutil.copytree(finished[0], root)
    for s in SEEDS:  # as if stopped just after the checkpoints at 64 frames
        for name in ("final_model.pt", "checkpoint_128.pt"):
            (seed_dir(root, s) / "models" / name).unlink()
    metrics, lines = _auto(root, 128, capsys)
    assert lines == [f"resume=auto: continuing {seed_dir(root, s)} from "
                     f"{seed_dir(root, s) / 'models' / 'checkpoint_64.pt'}" for s in SEEDS]
    assert {s: m["frames"] for s, m in metrics.items()} == {3: 128, 4: 128}
    assert [_rows(seed_dir(root, s)) for s in SEEDS] == [[32, 64, 96, 128]] * 2


def test_seeds_that_disagree_are_one_config_error(finished, tmp_path):
    root = tmp_path / "k"
    shutil.copytree(finished[0], root)
    (seed_dir(root, 4) / "models" / "final_model.pt").unlink()  # seed 4 stopped before its final model
    with pytest.raises(ConfigError, match="^resume=auto: seed 3 of .* is finished but seed 4 not") as err:
        run(compose_config(*TINY, "total_frames=128", "resume=auto"), root)
    shutil.rmtree(seed_dir(root, 3) / "models")  # seed 3 holds no checkpoint, seed 4 does
    with pytest.raises(ConfigError, match="^resume=auto: seed 4 of .* holds a checkpoint but seed 3 none") as err:
        run(compose_config(*TINY, "total_frames=128", "resume=auto"), root)
    assert "\n" not in str(err.value) and "num_seeds=1" in str(err.value)
    assert _rows(seed_dir(root, 3)) == [32, 64, 96, 128]  # nothing was removed or written
