"""benchmarks/pqn_wallclock.py: runs.csv says what stopped each job (its seconds or its frames), and the jobs that
ran out of frames before their seconds are named, since the others then had the cores to themselves."""
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import pqn_wallclock  # noqa: E402


def finished_job(path: Path, frames: int, seconds: float, final: float) -> None:
    (path / "models").mkdir(parents=True)
    (path / "models" / "final_model.pt").write_bytes(b"")
    (path / "training_log.csv").write_text(
        "step,frames,train/num_updates,time/elapsed_s,eval/ep_reward\n"
        f"0,{frames // 2},4,{seconds / 2},\n1,{frames},8,{seconds},{final}\n")


def test_runs_csv_names_what_stopped_each_job(tmp_path):
    finished_job(tmp_path / "qmix_s0", 900_000, 601.2, 48.5)
    finished_job(tmp_path / "pqn_vdn_s0", 2_009_600, 486.0, 47.0)
    (tmp_path / "pqn_qmix_s0").mkdir()  # not finished: no row
    early = pqn_wallclock.write_runs(tmp_path, tmp_path / "runs.csv", 600.0)
    assert early == ["pqn_vdn_s0 (486 s)"]
    rows = {r["variant"]: r for r in csv.DictReader(open(tmp_path / "runs.csv"))}
    assert set(rows) == {"qmix", "pqn_vdn"}
    assert (rows["qmix"]["stopped_by"], rows["pqn_vdn"]["stopped_by"]) == ("time", "frames")
    assert (rows["pqn_vdn"]["frames"], rows["pqn_vdn"]["num_updates"], rows["pqn_vdn"]["seed"]) == ("2009600", "8", "0")
    assert float(rows["qmix"]["final_eval_return"]) == 48.5
