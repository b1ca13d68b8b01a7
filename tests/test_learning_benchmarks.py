"""benchmarks/learning_balance.py and learning_envs.py: the sweeps they launch (variants that share their overrides
as one ``marl-train -m`` with ``resume=auto``), and their summaries from fake finished runs, computed with
``marl_torchrl.report`` and read at ``--frames`` (a longer run reports what it had there)."""
import csv
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import learning_balance  # noqa: E402
import learning_envs  # noqa: E402
from multirun import group_variants, sweep_command  # noqa: E402

from marl_torchrl.report.collect import write_fake_run  # noqa: E402


def test_variants_become_sweeps_with_the_common_overrides_first(tmp_path):
    groups = group_variants(learning_balance.specs(["qmix", "facmac", "facmac_continuous", "dop_continuous"]))
    assert [(g.variants, g.algorithms, g.extra) for g in groups] == [
        (["qmix", "facmac"], "qmix,facmac", []),
        (["facmac_continuous", "dop_continuous"], "facmac,dop", ["env.continuous_actions=true"])]
    cmd = sweep_command(groups[1], [0, 1], tmp_path, 2, learning_balance.COMMON)
    args = cmd[cmd.index("marl_torchrl.train") + 2:]
    assert args[:len(learning_balance.COMMON)] == learning_balance.COMMON
    assert args[len(learning_balance.COMMON):] == [
        "algorithm=facmac,dop", "seed=0,1", "env.continuous_actions=true", "resume=auto",
        f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=${algorithm.name}_continuous_s${seed}",
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    utd = group_variants(learning_balance.specs(["qmix", "qmix_utd4"], learning_envs.SUITES["lbf_8x8_2p_2f_coop"]
                                                ["algorithms"]))
    assert [(g.algorithms, g.extra, g.subdir) for g in utd] == [
        ("qmix", [], "${algorithm.name}"), ("qmix", ["train.updates_per_batch=64"], "${algorithm.name}_utd4")]


def test_the_summary_comes_from_the_report_at_the_asked_frames(tmp_path, capsys):
    out, results = tmp_path / "runs", tmp_path / "results"
    for name, evals in {"qmix_s0": [(100, 0.0), (200, 1.0)], "qmix_s1": [(100, 0.0), (200, 3.0)],
                        "vdn_s0": [(100, 0.0), (200, 2.0), (300, 9.0)]}.items():  # vdn s0 ran longer
        write_fake_run(out / name, name.split("_")[0], "vmas", "balance", int(name[-1]), evals)
    write_fake_run(out / "vdn_s1", "vdn", "vmas", "balance", 1, [(100, 5.0)], finished=False)
    status = learning_balance.run_and_summarise("t", ["qmix", "vdn"], [0, 1], 200, 1, out, [], summarise_only=True,
                                                randoms=lambda: {"random policy": -0.5}, results=results)
    assert status == 0
    summary = {r["algorithm"]: r for r in csv.DictReader(open(results / "t_summary.csv"))}
    qmix, vdn = summary["qmix"], summary["vdn"]
    assert (qmix["runs"], float(qmix["final_return_mean"]), float(qmix["final_return_iqm"])) == ("2", 2.0, 2.0)
    assert float(qmix["final_return_ci_low"]) == pytest.approx(1.0)
    assert float(qmix["final_return_ci_high"]) == pytest.approx(3.0)
    assert (vdn["runs"], float(vdn["final_return_mean"])) == ("1", 2.0)  # at 200 frames, not its 9.0 at 300
    assert float(summary["random_policy"]["final_return_mean"]) == -0.5
    runs = list(csv.DictReader(open(results / "t_runs.csv")))
    assert [(r["algorithm"], r["seed"], r["frames"]) for r in runs] == [("qmix", "0", "200"), ("qmix", "1", "200"),
                                                                       ("vdn", "0", "200")]
    assert float(runs[0]["wall_s"]) == 2.0 and float(runs[0]["end_to_end_fps"]) == 100.0
    assert (results / "t_curves.png").stat().st_size > 0 and not (results / "t_winrate.png").exists()
