"""benchmarks/final_eval.py: each finished run's final model replayed over many greedy episodes, one CSV row a
run, a summary over seeds per variant, resumable, and a run without a final model refused in one line."""
import csv
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import final_eval  # noqa: E402
from conftest import compose_config  # noqa: E402
from marl_torchrl.train import run  # noqa: E402

TINY = ["algorithm=vdn", "env=matrix/two_step", "env.num_envs=8", "collector.frames_per_batch=32",
        "replay.batch_size=4", "replay.warmup=4", "eval.interval_frames=0", "model.hidden_dim=8",
        "checkpoint.interval_frames=1000000", "threads=1", "total_frames=64"]


def test_wilson_interval_contains_the_rate_and_stays_in_unit_range():
    for wins, n in [(0, 10), (10, 10), (7, 128), (1900, 2048)]:
        low, high = final_eval.wilson(wins, n)
        assert 0.0 <= low <= wins / n <= high <= 1.0
    assert final_eval.wilson(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    narrow, wide = final_eval.wilson(1900, 2048), final_eval.wilson(118.75, 128)
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 3  # 16x the episodes: a quarter of the width


def test_summary_is_the_mean_over_seeds_and_pools_the_episodes():
    final, earlier = {"checkpoint": "final_model.pt", "frames": "3000000"}, {"checkpoint": "x.pt", "frames": "2500000"}
    rows = [{"variant": "a", "seed": "1", "episodes": "100", "battle_won": "0.9", **final},
            {"variant": "a", "seed": "0", "episodes": "100", "battle_won": "0.8", **final},
            {"variant": "b", "seed": "0", "episodes": "50", "battle_won": "1.0", **final},
            {"variant": "a", "seed": "0", "episodes": "100", "battle_won": "0.5", **earlier}]
    a_earlier, a, b = final_eval.summarise(rows, "battle_won")  # a variant's checkpoints in order of frames
    assert (a_earlier["variant"], a_earlier["mean"], a_earlier["n_seeds"]) == ("a@2.50M", 0.5, 1)
    assert (a["variant"], a["n_seeds"], a["seeds"], a["per_seed"], a["episodes"]) == ("a", 2, "0;1", "0.8000;0.9000", 200)
    assert a["mean"] == pytest.approx(0.85) and a["ci_low"] <= 0.85 <= a["ci_high"]
    assert (a["pooled_ci_low"], a["pooled_ci_high"]) == tuple(round(x, 4) for x in final_eval.wilson(170, 200))
    assert (b["n_seeds"], b["mean"], b["pooled_ci_high"]) == (1, 1.0, 1.0)


def test_runs_are_evaluated_once_and_summarised(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        run(compose_config([*TINY, f"seed={seed}"]), runs / f"vdn_s{seed}")
    out = tmp_path / "fe"
    argv = ["final_eval.py", str(runs / "vdn_s0"), str(runs / "vdn_s1"), "--out", str(out), "--episodes", "8",
            "--batch", "4"]
    monkeypatch.setattr(sys, "argv", argv)
    final_eval.main()
    rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    assert [(r["variant"], r["seed"], r["checkpoint"], r["episodes"], r["frames"]) for r in rows] == [
        ("vdn", "0", "final_model.pt", "8", "64"), ("vdn", "1", "final_model.pt", "8", "64")]
    assert all(0.0 <= float(r["ep_reward"]) <= 8.0 for r in rows)  # the two-step game pays at most 8
    summary = list(csv.DictReader(open(tmp_path / "fe_summary.csv")))
    assert [(s["variant"], s["metric"], s["n_seeds"], s["episodes"]) for s in summary] == [("vdn", "ep_reward", "2", "16")]
    assert float(summary[0]["mean"]) == pytest.approx(sum(float(r["ep_reward"]) for r in rows) / 2, abs=1e-3)
    assert out.with_suffix(".png").stat().st_size > 0
    capsys.readouterr()
    final_eval.main()  # resumed: nothing evaluated again
    assert capsys.readouterr().out.count("done, skipped") == 2


def test_a_run_without_a_final_model_is_one_error_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "vdn_s0").mkdir()
    monkeypatch.setattr(sys, "argv", ["final_eval.py", str(tmp_path / "vdn_s0"), "--out", str(tmp_path / "fe")])
    with pytest.raises(SystemExit) as exit_info:
        final_eval.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no models/final_model.pt in")
