"""The runner: kill -9 at several points, rerun, same table as an uninterrupted run; errors are rows."""
import os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest
from internvid_nb.scale.runner import run_stage, read_parts, run_lock, remove_stale_temp

JOB = Path(__file__).parent / "helpers" / "run_stage_job.py"


def _run(out, *extra):
    return subprocess.run([sys.executable, str(JOB), str(out), *extra], capture_output=True, text=True, timeout=300)


def test_kill_9_then_rerun_gives_the_same_table(tmp_path):
    assert _run(tmp_path / "whole", "bad").returncode == 0
    whole = read_parts(tmp_path / "whole")
    assert len(whole) == 353 and whole.clip_id.is_unique
    bad = whole.set_index("clip_id").loc["broken"]
    assert bad.status == "error" and "nonexistent.mp4" in bad.error and "file not found" in bad.error
    for k, target in enumerate([3, 20, 40]):                                # kill points, in finished parts of 45
        out = tmp_path / f"killed{k}"
        p = subprocess.Popen([sys.executable, str(JOB), str(out), "bad"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while len(list(out.glob("part-*.parquet"))) < target and time.time() < deadline and p.poll() is None: time.sleep(0.01)
        os.kill(p.pid, signal.SIGKILL); p.wait()
        n_parts = len(list(out.glob("part-*.parquet")))
        assert target <= n_parts < 45, n_parts                             # killed in the middle
        (out / ".part-99999999-0123456789.parquet.x1y2.tmp").write_bytes(b"half")   # a write cut by the kill, whether or not this kill cut one
        assert _run(out, "bad").returncode == 0
        again = read_parts(out)
        assert not list(out.glob(".*tmp"))                                 # no half-written part survives
        pd.testing.assert_frame_equal(again.sort_values("clip_id").reset_index(drop=True), whole.sort_values("clip_id").reset_index(drop=True))


def test_duplicate_ids_and_missing_id_column_are_refused(tmp_path):
    t = pd.DataFrame({"clip_id": ["a", "a"], "x": [1, 2]})
    with pytest.raises(ValueError, match="duplicates"): run_stage(lambda b: b, t, tmp_path / "r", progress=False)
    with pytest.raises(ValueError, match="no 'clip_id' column"):
        run_stage(lambda b: b.drop(columns="clip_id"), t.assign(clip_id=["a", "b"]), tmp_path / "s", progress=False)


def test_a_table_with_a_repeated_index_runs(tmp_path):
    t = pd.concat([pd.DataFrame({"clip_id": ["a", "b"]}), pd.DataFrame({"clip_id": ["c"]})])     # index 0, 1, 0
    out = run_stage(lambda b: b.assign(n=b.clip_id.str.len()), t, tmp_path / "r", batch_size=1, progress=False)
    assert out.clip_id.tolist() == ["a", "b", "c"] and len(list((tmp_path / "r").glob("part-*.parquet"))) == 3


def test_stale_temp_files_are_removed_but_not_those_of_a_live_run_in_a_subfolder(tmp_path):
    (tmp_path / "a").mkdir(); (tmp_path / "b" / "c").mkdir(parents=True)
    mine, stale, live = tmp_path / ".x.parquet.1.tmp", tmp_path / "a" / ".y.parquet.2.tmp", tmp_path / "b" / "c" / ".z.parquet.3.tmp"
    for p in (mine, stale, live): p.write_bytes(b"")
    with run_lock(tmp_path / "b"):                                          # another run writes under b now
        with run_lock(tmp_path): assert remove_stale_temp(tmp_path) == 2
        assert live.exists() and not mine.exists() and not stale.exists()
    with run_lock(tmp_path): assert remove_stale_temp(tmp_path) == 1       # b's run ended: what it left is stale
    assert not live.exists()
