"""marl-report (issue 18, item 3): statistics against hand-computed values, a report over synthetic run
dirs, error handling, and one real end-to-end report over two tiny trainings."""
from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from marl_torchrl.report.cli import main
from marl_torchrl.report.collect import write_fake_run
from marl_torchrl.report.stats import (bootstrap_ci, iqm, iqm_weights, prob_improvement, prob_improvement_ci,
                                       stratified_bootstrap)


def test_iqm_hand_values():
    assert iqm([7.0]) == 7.0
    assert iqm([1.0, 3.0]) == 2.0                                   # n=2: floor(2/4) = 0 dropped
    assert iqm([0.0, 1.0, 9.0]) == pytest.approx(10 / 3)           # n=3: nothing dropped, the mean
    assert iqm([4.0, 3.0, 2.0, 1.0]) == 2.5                         # middle two of 1..4
    assert iqm([1.0, 2.0, 4.0, 10.0, 100.0]) == pytest.approx(16 / 3)  # drops 1 and 100
    assert iqm_weights(5).tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_iqm_vs_scipy_trim_mean():
    sps = pytest.importorskip("scipy.stats")  # a cross-check only; scipy is not a dependency
    x = np.array([5.0, -1.0, 3.0, 8.0, 0.0, 2.0, 9.0, 4.0])        # n multiple of 4: identical
    assert iqm(x) == pytest.approx(sps.trim_mean(x, 0.25)) == pytest.approx(3.5)
    for n in range(1, 12):  # every n: rliable's definition
        y = np.random.default_rng(n).normal(size=n)
        assert iqm(y) == pytest.approx(sps.trim_mean(y, 0.25))


def test_prob_improvement_hand_and_scipy():
    assert prob_improvement([[1.0, 2.0, 3.0]], [[2.0, 2.0]]) == pytest.approx(3 / 6)   # 0+0+.5+.5+1+1
    assert prob_improvement([[3.0, 4.0]], [[1.0, 3.0, 5.0]]) == pytest.approx(3.5 / 6)
    sps = pytest.importorskip("scipy.stats")
    x, y = [0.5, 2.0, 2.0, 7.0], [2.0, 1.0, 3.0]
    u = sps.mannwhitneyu(x, y, alternative="two-sided").statistic   # U of x, ties 1/2
    assert prob_improvement([x], [y]) == pytest.approx(u / 12)
    # averaged over tasks: task 1 -> 1, task 2 -> 0
    assert prob_improvement([[2.0], [0.0]], [[1.0], [5.0]]) == 0.5


def test_bootstraps():
    # stratified: resampling never moves a score to the other task, so the pooled mean is always 0.5
    assert set(stratified_bootstrap([[0.0, 0.0], [1.0, 1.0]], reps=300).tolist()) == {0.5}
    point, lo, hi = bootstrap_ci([[1.0, 2.0, 3.0, 10.0]], reps=500, seed=1)
    assert point == 4.0 and 1.0 <= lo < point < hi <= 10.0
    assert bootstrap_ci([[1.0, 2.0, 3.0, 10.0]], reps=500, seed=1) == (point, lo, hi)   # seeded
    p, plo, phi = prob_improvement_ci([[1.0, 2.0, 3.0]], [[2.0, 2.0]], reps=500)
    assert p == 0.5 and 0.0 <= plo <= p <= phi <= 1.0


# finals per (algorithm, task); run s evaluates at frames 50 (value final/2) and 100 + 50 s (value final)
FINALS = {("vdn", "two_step"): [1.0, 2.0, 6.0], ("qmix", "two_step"): [0.0, 1.0, 2.0],
          ("vdn", "climb"): [10.0, 10.0, 10.0], ("qmix", "climb"): [10.0, 20.0, 30.0]}


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "sweep"
    for (algo, task), finals in FINALS.items():
        for s, v in enumerate(finals):
            write_fake_run(root / algo / task / f"s{s}", algo, "matrix", task, s, [(50, v / 2), (100 + 50 * s, v)])
    write_fake_run(root / "unfinished", "vdn", "matrix", "two_step", 9, [(50, 99.0)], finished=False)
    write_fake_run(root / "broken", "vdn", "matrix", "two_step", 8, [(50, 99.0)])
    (root / "broken" / "configs" / "hparams.json").write_text("{not json")
    return root


def test_report_on_synthetic_sweep(sweep, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main([str(sweep), "--out", str(out), "--reps", "300"]) == 0
    printed = capsys.readouterr().out
    assert f"skipped: {sweep / 'unfinished'}: unfinished" in printed and f"skipped: {sweep / 'broken'}: unreadable" in printed

    final = {(r["algorithm"], r["task"]): r for r in _rows(out / "final.csv")}
    assert set(final) == {("qmix", "matrix/climb"), ("qmix", "matrix/two_step"), ("qmix", "all (2 tasks)"),
                          ("vdn", "matrix/climb"), ("vdn", "matrix/two_step"), ("vdn", "all (2 tasks)")}
    r = final[("vdn", "matrix/two_step")]
    assert int(r["n_runs"]) == 3 and float(r["mean"]) == 3.0 and float(r["iqm"]) == pytest.approx(3.0)  # n=3: mean
    assert 1.0 <= float(r["iqm_ci_low"]) <= 3.0 <= float(r["iqm_ci_high"]) <= 6.0
    assert float(final[("qmix", "matrix/two_step")]["iqm"]) == pytest.approx(1.0)
    c = final[("vdn", "matrix/climb")]
    assert float(c["mean_ci_low"]) == float(c["mean_ci_high"]) == 10.0
    a = final[("vdn", "all (2 tasks)")]   # pooled [1,2,6,10,10,10]: drop floor(6/4)=1 each end -> (2+6+10+10)/4
    assert int(a["n_runs"]) == 6 and float(a["mean"]) == 6.5 and float(a["iqm"]) == pytest.approx(7.0)

    (poi,) = _rows(out / "prob_improvement.csv")
    assert (poi["x"], poi["y"], poi["shared_tasks"]) == ("qmix", "vdn", "matrix/climb matrix/two_step")
    # two_step: qmix [0,1,2] vs vdn [1,2,6] -> 2/9; climb: [10,20,30] vs [10,10,10] -> 7.5/9
    assert float(poi["p_x_better"]) == pytest.approx((2 / 9 + 7.5 / 9) / 2)
    assert float(poi["ci_low"]) <= float(poi["p_x_better"]) <= float(poi["ci_high"])

    curve = {(r["axis"], float(r["x"])): r for r in _rows(out / "curves.csv")
             if (r["algorithm"], r["task"]) == ("vdn", "matrix/two_step")}
    assert sorted(x for ax, x in curve if ax == "frames") == [50.0, 100.0, 150.0, 200.0]
    assert float(curve[("frames", 50.0)]["mean"]) == pytest.approx(1.5)
    # at 100: s0 ends there (1), s1 halfway 50->150 (1.5), s2 a third of 50->200 (3 + 1) -> mean 6.5/3
    assert float(curve[("frames", 100.0)]["mean"]) == pytest.approx(6.5 / 3)
    assert int(curve[("frames", 200.0)]["n_runs"]) == 1 and float(curve[("frames", 200.0)]["mean"]) == 6.0
    assert float(curve[("seconds", 2.0)]["mean"]) == 6.0           # 0.01 s per frame

    md = (out / "report.md").read_text()
    assert "## Final performance" in md and "## Probability of improvement" in md and "| qmix | vdn |" in md
    assert f"- skipped: {sweep / 'unfinished'}: unfinished" in md
    for png in ("curves_frames.png", "curves_seconds.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("make", ["missing", "empty", "all_skipped"])
def test_bad_paths_exit_2(tmp_path, capsys, make):
    p = tmp_path / "x"
    if make != "missing":
        p.mkdir()
    if make == "all_skipped":
        write_fake_run(p / "r", "vdn", "matrix", "two_step", 0, [(50, 1.0)], finished=False)
    with pytest.raises(SystemExit) as exc:
        main([str(p), "--out", str(tmp_path / "rep")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_module_entry_does_not_import_torch(sweep, tmp_path):
    code = ("import sys; from marl_torchrl.report.cli import main; "
            f"main([{str(sweep)!r}, '--out', {str(tmp_path / 'rep')!r}, '--reps', '50']); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    proc = subprocess.run([sys.executable, "-m", "marl_torchrl.report", str(tmp_path / "nope")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error:")


def test_real_runs_end_to_end(tmp_path):
    from marl_torchrl.config import compose_config
    from marl_torchrl.plots import read_log
    from marl_torchrl.train import run

    for s in (0, 1):
        run(compose_config("algorithm=vdn", "env=matrix/two_step", "total_frames=64", "env.num_envs=8",
                           "collector.frames_per_batch=32", "replay.batch_size=4", "replay.warmup=4",
                           "eval.interval_frames=32", "eval.episodes=2", "model.hidden_dim=8", f"seed={s}"),
            tmp_path / f"vdn_s{s}")
    out = tmp_path / "rep"
    assert main([str(tmp_path), "--out", str(out), "--reps", "200"]) == 0
    (row,) = _rows(out / "final.csv")
    assert (row["algorithm"], row["task"], row["n_runs"]) == ("vdn", "matrix/two_step", "2")
    finals = []
    for s in (0, 1):
        ev = read_log(tmp_path / f"vdn_s{s}" / "training_log.csv")["eval/ep_reward"]
        finals.append(ev[np.isfinite(ev)][-1])
    assert float(row["mean"]) == pytest.approx(np.mean(finals)) and float(row["iqm"]) == pytest.approx(np.mean(finals))
    assert {r["axis"] for r in _rows(out / "curves.csv")} == {"frames", "seconds"}
    assert _rows(out / "prob_improvement.csv") == []
    assert "No two algorithms share a task." in (out / "report.md").read_text()
