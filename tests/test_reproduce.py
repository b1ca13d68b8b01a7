"""benchmarks/reproduce.py without training: run-state detection, the CSV and table from fake finished runs,
the --dry-run plan, and the refusal of an unknown suite."""
import csv
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import reproduce  # noqa: E402
import reproduce_table  # noqa: E402

from marl_torchrl.report.collect import write_fake_run  # noqa: E402

TASK = "lbf_8x8_2p_2f_coop"
EVALS = [(32, 0.25), (64, 0.5)]


def checkpoint(run_dir: Path, frames: int) -> None:
    (run_dir / "models").mkdir(parents=True, exist_ok=True)
    zipfile.ZipFile(run_dir / "models" / f"checkpoint_{frames}.pt", "w").close()  # complete: a zip directory


@pytest.fixture
def out(tmp_path):
    """Runs of TASK at --frames 64: vdn s0 and s1 and qmix s0 finished, vdn s2 half done (a checkpoint),
    qmix s1 a stale dir without a checkpoint, and a full-budget vdn s0 that a 64-frame report must ignore."""
    base = tmp_path / "runs" / TASK
    for name, value in (("vdn_s0_f64", 0.5), ("vdn_s1_f64", 0.7), ("qmix_s0_f64", 0.1)):
        algo, seed = name.split("_s")[0], int(name.split("_s")[1][0])
        write_fake_run(base / name, algo, "lbf", "Foraging-8x8-2p-2f-coop-v3", seed, [(32, 0.0), (64, value)])
    write_fake_run(base / "vdn_s2_f64", "vdn", "lbf", "x", 2, [(32, 0.0)], finished=False)
    checkpoint(base / "vdn_s2_f64", 32)
    write_fake_run(base / "qmix_s1_f64", "qmix", "lbf", "x", 1, [(32, 0.0)], finished=False)
    write_fake_run(base / "vdn_s0", "vdn", "lbf", "x", 0, [(64, 9.0)])
    return tmp_path / "runs"


def test_run_state(tmp_path):
    run = tmp_path / "r"
    assert reproduce.run_state(run, 64) == "fresh"  # no dir
    write_fake_run(run, "vdn", "lbf", "t", 0, EVALS, finished=False)
    assert reproduce.run_state(run, 64) == "fresh"  # a log, no checkpoint
    checkpoint(run, 32)
    assert reproduce.run_state(run, 64) == "resume"
    write_fake_run(run, "vdn", "lbf", "t", 0, EVALS)  # final model, log reaches 64
    assert reproduce.run_state(run, 64) == "done"
    assert reproduce.run_state(run, 128) == "resume"  # a longer budget continues from the checkpoint
    assert reproduce.run_dir(tmp_path, TASK, "vdn", 1, 4000).name == "vdn_s1_f4000"
    assert reproduce.run_dir(tmp_path, TASK, "vdn", 1).name == "vdn_s1"


def test_csv_and_table(out, tmp_path):
    found = reproduce.finished(TASK, out, 64)
    assert sorted((v, s) for v, s, _ in found) == [("qmix", 0), ("vdn", 0), ("vdn", 1)]
    results = tmp_path / "results"
    written = reproduce_table.write_suite(TASK, found, 2, results)
    assert [p.name for p in written] == [f"reproduce_{TASK}.csv", f"reproduce_{TASK}.png"]
    rows = {r["variant"]: r for r in csv.DictReader(open(written[0]))}
    vdn = rows["vdn"]
    assert (vdn["n_seeds"], vdn["seeds"], vdn["return_per_seed"], vdn["total_frames"]) == ("2", "0;1", "0.5;0.7", "64")
    assert float(vdn["return_mean"]) == pytest.approx(0.6)
    assert float(vdn["return_ci_low"]) <= 0.6 <= float(vdn["return_ci_high"])
    assert float(vdn["return_per_agent"]) == pytest.approx(0.3)
    assert float(vdn["wall_min_mean"]) == pytest.approx(0.64 / 60, abs=1e-4)
    assert vdn["win_rate_mean"] == ""
    # a SMAX csv with a win rate, as write_suite writes it: the table shows it beside its reference
    smax = {**dict.fromkeys(reproduce_table.CSV_FIELDS, ""), "task": "smax_3m", "variant": "pqn_vdn", "n_seeds": 3,
            "return_mean": 1.5, "return_ci_low": 1.0, "return_ci_high": 2.0, "total_frames": 4000,
            "win_rate_mean": 0.9, "win_rate_ci_low": 0.8, "win_rate_ci_high": 1.0}
    reproduce_table.write_csv([smax], reproduce_table.CSV_FIELDS, results / "reproduce_smax_3m.csv")
    assert reproduce.main(["--table", "--results", str(results)]) == 0
    table = (results / "reproduce_table.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith(f"| {TASK}") or line.startswith("| smax_3m")]
    assert len(lines) == 3
    assert "0.6 [" in table and "none published" in table and "2.05M env steps" in table
    assert "win rate 0.9 [0.8, 1]" in table and "~0.95" in table and "not 3m alone" in table


def test_dry_run(out, capsys):
    assert reproduce.main(["--suite", TASK, "--seeds", "0", "1", "2", "--frames", "64", "--out", str(out),
                           "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "qmix s0: done, skipped" in text and "vdn s0: done, skipped" in text
    assert "vdn s2: resume from" in text and "qmix s1: start" in text
    cmds = [line.split() for line in text.splitlines() if line.startswith("  ")]
    assert len(cmds) == 3  # qmix s1, qmix s2, vdn s2
    resume = next(c for c in cmds if f"hydra.run.dir={out / TASK / 'vdn_s2_f64'}" in c)
    assert f"resume={out / TASK / 'vdn_s2_f64'}" in resume
    for c in cmds:
        assert f"experiment={TASK}" in c and "total_frames=64" in c and "threads=1" in c
        assert any(a.startswith("algorithm=") for a in c) and any(a.startswith("seed=") for a in c)
    assert (out / TASK / "qmix_s1_f64").exists() and not (out / TASK / "qmix_s2_f64").exists()  # nothing touched


def test_unknown_suite(monkeypatch, capsys):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reproduce.py"), "--suite", "no_such_task"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("error:") and "unknown task" in r.stderr
    monkeypatch.setitem(reproduce.SUITES, "later_task", {"algorithms": ["qmix"], "n_agents": 2})
    assert reproduce.main(["--suite", "later_task"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and "not written yet" in err
