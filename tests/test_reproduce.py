"""benchmarks/reproduce.py: the sweeps it launches, the CSV and table from fake finished runs, the --dry-run
plan, the refusal of an unknown suite, and one tiny run through the multirun path that a rerun skips."""
import csv
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import reproduce  # noqa: E402
import reproduce_table  # noqa: E402

from marl_torchrl.report.collect import write_fake_run  # noqa: E402

TASK = "lbf_8x8_2p_2f_coop"


def checkpoint(run_dir: Path, frames: int) -> None:
    (run_dir / "models").mkdir(parents=True, exist_ok=True)
    zipfile.ZipFile(run_dir / "models" / f"checkpoint_{frames}.pt", "w").close()  # complete: a zip directory


def fake_run(run_dir: Path, algo: str, seed: int, evals, finished: bool = True) -> None:
    """A fake run whose final model holds the counters ``resume=auto`` reads (its last eval's frames)."""
    write_fake_run(run_dir, algo, "lbf", "Foraging-8x8-2p-2f-coop-v3", seed, evals, finished=finished)
    if finished:
        torch.save({"counters": {"frames": int(evals[-1][0])}}, run_dir / "models" / "final_model.pt")


@pytest.fixture
def out(tmp_path):
    """Runs of TASK at --frames 64: vdn s0 and s1 and qmix s0 finished, vdn s2 half done (a checkpoint),
    qmix s1 a stale dir without a checkpoint, and a full-budget vdn s0 that a 64-frame report must ignore."""
    base = tmp_path / "runs" / TASK
    for name, value in (("vdn_s0_f64", 0.5), ("vdn_s1_f64", 0.7), ("qmix_s0_f64", 0.1)):
        algo, seed = name.split("_s")[0], int(name.split("_s")[1][0])
        fake_run(base / name, algo, seed, [(32, 0.0), (64, value)])
    fake_run(base / "vdn_s2_f64", "vdn", 2, [(32, 0.0)], finished=False)
    checkpoint(base / "vdn_s2_f64", 32)
    fake_run(base / "qmix_s1_f64", "qmix", 1, [(32, 0.0)], finished=False)
    fake_run(base / "vdn_s0", "vdn", 0, [(64, 9.0)])
    return tmp_path / "runs"


def test_variants_sharing_their_overrides_are_one_sweep_named_after_variant_and_seed(tmp_path):
    found = reproduce.sweeps("balance", ["qmix", "facmac_continuous", "dop", "dop_continuous"], [0, 1], tmp_path,
                             frames=4000, jobs=2)
    assert [g.variants for g, _ in found] == [["qmix", "dop"], ["facmac_continuous", "dop_continuous"]]
    bare, continuous = (set(cmd[cmd.index("marl_torchrl.train") + 2:]) for _, cmd in found)
    assert {"algorithm=qmix,dop", "seed=0,1"} <= bare and not any(a.startswith("env.") for a in bare)
    assert {"algorithm=facmac,dop", "seed=0,1", "env.continuous_actions=true",
            "hydra.sweep.subdir=${algorithm.name}_continuous_s${seed}_f4000"} <= continuous
    for cmd in (bare, continuous):
        assert {"experiment=balance", "resume=auto", "threads=1", "total_frames=4000",
                f"hydra.sweep.dir={tmp_path / 'balance'}", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"} <= cmd
    one = reproduce.sweeps("balance", ["qmix"], [0], tmp_path, jobs=1)[0][1]
    assert "hydra.sweep.subdir=${algorithm.name}_s${seed}" in one and not any("launcher" in a for a in one)
    assert reproduce.run_dir(tmp_path, TASK, "vdn", 1, 4000).name == "vdn_s1_f4000"
    assert reproduce.run_dir(tmp_path, TASK, "vdn", 1).name == "vdn_s1"


def test_csv_and_table(out, tmp_path):
    found = reproduce.finished(TASK, out, 64)
    assert sorted((v, s) for v, s, _ in found) == [("qmix", 0), ("vdn", 0), ("vdn", 1)]
    results = tmp_path / "results"
    written = reproduce_table.write_suite(TASK, found, 2, results)
    assert [p.name for p in written] == [f"reproduce_{TASK}.csv", f"reproduce_{TASK}_curves.csv", f"reproduce_{TASK}.png"]
    rows = {r["variant"]: r for r in csv.DictReader(open(written[0]))}
    vdn = rows["vdn"]
    assert (vdn["n_seeds"], vdn["seeds"], vdn["return_per_seed"], vdn["total_frames"]) == ("2", "0;1", "0.5;0.7", "64")
    assert float(vdn["return_mean"]) == pytest.approx(0.6)
    assert float(vdn["return_ci_low"]) <= 0.6 <= float(vdn["return_ci_high"])
    assert float(vdn["return_per_agent"]) == pytest.approx(0.3)
    assert float(vdn["wall_min_mean"]) == pytest.approx(0.64 / 60, abs=1e-4)
    assert vdn["episode_metric"] == vdn["episode_metric_mean"] == ""
    # a SMAX csv with a win rate, as write_suite writes it: the table shows it beside its reference
    smax = {**dict.fromkeys(reproduce_table.CSV_FIELDS, ""), "task": "smax_3m", "variant": "pqn_vdn", "n_seeds": 3,
            "return_mean": 1.5, "return_ci_low": 1.0, "return_ci_high": 2.0, "total_frames": 4000,
            "episode_metric": "battle_won", "episode_metric_mean": 0.9, "episode_metric_ci_low": 0.8,
            "episode_metric_ci_high": 1.0}
    reproduce_table.write_csv([smax], reproduce_table.CSV_FIELDS, results / "reproduce_smax_3m.csv")
    assert reproduce.main(["--table", "--results", str(results)]) == 0
    table = (results / "reproduce_table.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith(f"| {TASK}") or line.startswith("| smax_3m")]
    assert len(lines) == 3
    assert "0.6 [" in table and "none published" in table and "2.05M env steps" in table
    assert "win rate 0.9 [0.8, 1]" in table and "~0.95" in table and "not 3m alone" in table
    assert "replayed" not in table
    # final models replayed by final_eval.py: one line per variant's final models, earlier checkpoints left out
    (results / "final_eval_smax_3m_summary.csv").write_text(
        "variant,metric,n_seeds,seeds,per_seed,mean,ci_low,ci_high,episodes,pooled_ci_low,pooled_ci_high\n"
        "pqn_vdn,battle_won,2,0;1,0.9038;0.8984,0.9011,0.8984,0.9038,4096,0.89,0.91\n"
        "pqn_vdn@2.50M,battle_won,2,0;1,0.8;0.8,0.8,0.8,0.8,4096,0.79,0.81\n"
        "pqn_h384,battle_won,1,0,0.92,0.92,0.92,0.92,2048,0.91,0.93\n")
    assert reproduce.main(["--table", "--results", str(results)]) == 0
    table = (results / "reproduce_table.md").read_text()
    assert "- smax_3m pqn_vdn: battle won 0.901 [0.898, 0.904], n=2 seeds (0.9038, 0.8984), 2048 greedy episodes a run" in table
    assert "- smax_3m pqn_h384: battle won 0.92, 1 seed (no interval over seeds), 2048 greedy episodes a run" in table
    assert "2.50M" not in table


def test_a_variant_without_runs_keeps_its_row_and_curves(out, tmp_path, monkeypatch):
    """Run dirs are not committed: rebuilding the suite from one variant's runs keeps the others' results."""
    found = reproduce.finished(TASK, out, 64)
    results = tmp_path / "results"
    reproduce_table.write_suite(TASK, found, 2, results)
    before = {r["variant"]: r for r in csv.DictReader(open(results / f"reproduce_{TASK}.csv"))}
    curves = list(csv.DictReader(open(results / f"reproduce_{TASK}_curves.csv")))
    assert {(c["variant"], c["seed"]) for c in curves} == {("qmix", "0"), ("vdn", "0"), ("vdn", "1")}
    plotted = []
    monkeypatch.setattr(reproduce_table, "plot_curves", lambda rows, *a: plotted.append(rows) or a[-1])
    reproduce_table.write_suite(TASK, [f for f in found if f[0] == "vdn"], 2, results)  # qmix's runs gone
    after = {r["variant"]: r for r in csv.DictReader(open(results / f"reproduce_{TASK}.csv"))}
    assert after == before
    assert list(csv.DictReader(open(results / f"reproduce_{TASK}_curves.csv"))) == curves
    assert {row["algorithm"] for row in plotted[0]} == {"qmix", "vdn"}


def test_dry_run(out, capsys):
    assert reproduce.main(["--suite", TASK, "--seeds", "0", "1", "2", "--frames", "64", "--out", str(out),
                           "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "qmix s0: done, skipped" in text and "vdn s0: done, skipped" in text and "vdn s1: done, skipped" in text
    assert f"vdn s2: resume {out / TASK / 'vdn_s2_f64'}" in text and "qmix s1: start" in text
    cmds = [line.split() for line in text.splitlines() if line.startswith("  ")]
    assert len(cmds) == 1  # qmix and vdn share their overrides: one sweep
    assert {f"experiment={TASK}", "algorithm=qmix,vdn", "seed=0,1,2", "resume=auto", "total_frames=64"} <= set(cmds[0])
    assert (out / TASK / "qmix_s1_f64").exists() and not (out / TASK / "qmix_s2_f64").exists()  # nothing touched


def test_stacked_seeds_one_job_per_k_run_and_ordinary_run_dirs_win(out, capsys):
    """``--num-seeds K``: one ``num_seeds=K`` job per K consecutive seeds, seed s in ``<job dir>/seed_<s>``; a seed
    with an ordinary run dir too counts once, from the ordinary dir; seeds that are not K-runs: one error line."""
    base = out / TASK
    for seed, value in ((0, 0.2), (1, 0.4)):  # a finished K-run of vdn seeds 0-1; vdn_s0_f64 also exists
        fake_run(base / "vdn_s0_k2_f64" / f"seed_{seed}", "vdn", seed, [(32, 0.0), (64, value)])
        fake_run(base / "qmix_s2_k2_f64" / f"seed_{seed + 2}", "qmix", seed + 2, [(32, 0.0), (64, value)])
    found = {(v, s): p for v, s, p in reproduce.finished(TASK, out, 64)}
    assert found[("qmix", 3)] == base / "qmix_s2_k2_f64" / "seed_3"
    assert found[("vdn", 0)] == base / "vdn_s0_f64" and found[("vdn", 1)] == base / "vdn_s1_f64"
    cmd = reproduce.sweeps(TASK, ["qmix", "vdn"], [2, 3], out, 64, jobs=2, k=2)[0][1]
    assert {"num_seeds=2", "seed=2", "hydra.sweep.subdir=${algorithm.name}_s${seed}_k2_f64"} <= set(cmd)
    states = {(v, s): (p, st) for v, s, p, st in reproduce.plan(TASK, ["vdn"], [0, 1, 2, 3], out, 64, k=2)}
    assert states[("vdn", 1)] == (base / "vdn_s0_k2_f64" / "seed_1", "done")
    assert states[("vdn", 3)] == (base / "vdn_s2_k2_f64" / "seed_3", "fresh")
    assert reproduce.main(["--suite", TASK, "--seeds", "0", "2", "--num-seeds", "2", "--out", str(out),
                           "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --num-seeds 2 needs runs of 2 consecutive seeds")


def test_unknown_suite(monkeypatch, capsys):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reproduce.py"), "--suite", "no_such_task"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("error:") and "unknown task" in r.stderr
    monkeypatch.setitem(reproduce.SUITES, "later_task", {"algorithms": ["qmix"], "n_agents": 2})
    assert reproduce.main(["--suite", "later_task"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and "not written yet" in err


QUICK = ["eval.final_episodes=8", "eval.episodes=8", "model.hidden_dim=8", "checkpoint.interval_frames=400"]


def test_a_tiny_suite_runs_through_the_multirun_path_and_a_rerun_skips_it(tmp_path, monkeypatch, capsys):
    """One 800-frame LBF run (a variant with extra overrides: its own sweep), then the same command again."""
    monkeypatch.setitem(reproduce.SUITES, TASK, {"algorithms": ["vdn"], "n_agents": 2,
                                                 "variants": {"vdn_quick": ("vdn", QUICK)}})
    argv = ["--suite", TASK, "--algorithms", "vdn_quick", "--seeds", "0", "--frames", "800", "--jobs", "1",
            "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "results")]
    assert reproduce.main(argv) == 0, (tmp_path / "runs" / TASK / "sweep.log").read_text()[-3000:]
    text = capsys.readouterr().out
    assert "sweep of vdn_quick:" in text and "resume=auto: no checkpoint in" in text
    final = tmp_path / "runs" / TASK / "vdn_quick_s0_f800" / "models" / "final_model.pt"
    stamp = final.stat().st_mtime_ns
    rows = list(csv.DictReader(open(tmp_path / "results" / f"reproduce_{TASK}_f800.csv")))
    assert [(r["variant"], r["algorithm"], r["n_seeds"], r["total_frames"]) for r in rows] == \
        [("vdn_quick", "vdn", "1", "800")]
    assert "vdn_quick" in (tmp_path / "results" / "reproduce_table.md").read_text()
    assert reproduce.main(argv) == 0
    text = capsys.readouterr().out
    assert "vdn_quick s0: done, skipped" in text and "sweep of" not in text
    assert final.stat().st_mtime_ns == stamp


def test_the_benchmarks_readme_copy_of_the_table_is_current():
    """benchmarks/README.md repeats the committed results/reproduce_table.md (the table's rows and the replayed
    final models): every such line of the generated table is in the README, so the two cannot drift apart."""
    generated = (ROOT / "benchmarks" / "results" / "reproduce_table.md").read_text().splitlines()
    readme = set((ROOT / "benchmarks" / "README.md").read_text().splitlines())
    rows = [line for line in generated if line.startswith("| ") or line.startswith("- ")]
    assert len(rows) > 5
    missing = [line for line in rows if line not in readme]
    assert not missing, "benchmarks/README.md lacks these lines of results/reproduce_table.md:\n" + "\n".join(missing)
