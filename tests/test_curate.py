"""The curation chain: every output written and readable, and kill -9 in the middle then a rerun gives the same tables."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest
from internvid_nb.data.schema import read_parquet, read_internvid_jsonl
from internvid_nb.data.shards import read_shards

JOB = Path(__file__).parent / "helpers" / "curate_job.py"


def _run(out):
    return subprocess.run([sys.executable, str(JOB), str(out)], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("curate") / "whole"
    r = _run(out)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def _tables(out):
    clips = read_parquet(out / "clips.parquet").sort_values("clip_id").reset_index(drop=True)
    subsets = {k: read_parquet(out / "subsets" / f"{k}.parquet").clip_id.tolist() for k in ("random", "div", "flt", "aes")}
    return clips, subsets, (out / "internvid.jsonl").read_text()


def test_chain_writes_every_output(whole, world):
    s = json.loads((whole / "summary.json").read_text())
    clips, subsets, jsonl = _tables(whole)
    assert s["videos"] == 6 and s["videos_failed"] == 0 and s["clips_captioned"] == len(clips) == s["clips_kept"]
    assert (clips.status == "ok").all() and clips.caption_summary.str.len().gt(10).all()
    assert clips.caption_fine.map(len).ge(1).all() and clips.sim_score.between(-1, 1).all()
    assert clips.video_id.isin(world.raw.video_id).all() and (clips.end > clips.start).all()
    back, issues = read_internvid_jsonl(whole / "internvid.jsonl")
    assert issues == [] and len(back) == len(clips) - s["duplicates"]
    samples = list(read_shards(sorted((whole / "shards").glob("*.tar"))))
    assert [x["json"]["clip_id"] for x in samples] == subsets["flt"]
    assert 0 < len(subsets["flt"]) < len(clips) and set(subsets["aes"]) <= set(clips.clip_id)
    assert s["clips_per_s"]["caption_score"] > 0 and s["models"]["caption"] == "captioner-tiny"


def test_kill_9_in_the_middle_then_rerun_gives_the_same_tables(whole, tmp_path):
    out = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, str(JOB), str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(list((out / "curate").glob("part-*.parquet"))) < 3 and time.time() < deadline and p.poll() is None: time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    done = sorted((out / "curate").glob("part-*.parquet"))
    assert len(done) >= 3 and not (out / "clips.parquet").exists(), "killed before the caption stage finished"
    mtimes = {q.name: q.stat().st_mtime_ns for q in done}
    assert _run(out).returncode == 0
    assert {q.name: q.stat().st_mtime_ns for q in done} == mtimes          # finished parts were not redone
    a, b = _tables(out), _tables(whole)
    pd.testing.assert_frame_equal(a[0], b[0])
    assert a[1] == b[1] and a[2] == b[2]


def test_no_clip_surviving_a_stage_writes_empty_outputs_and_lists_the_errors(world, tmp_path):
    from types import SimpleNamespace
    from internvid_nb.curation.curate import CurateConfig, CurationModels, run_curation
    from internvid_nb.curation.segment import SegmentConfig
    quiet = lambda *a: None
    # every video fails segmentation
    videos = pd.DataFrame({"video_id": ["v1", "v2"], "path": [str(tmp_path / "v1.mp4"), str(tmp_path / "v2.mp4")]})
    s = run_curation(videos, tmp_path / "none", progress=False, log=quiet)
    assert s["videos_failed"] == 2 and [v for v, _ in s["video_errors"]] == ["v1", "v2"] and all(e for _, e in s["video_errors"])
    assert s["clips_kept"] == 0 and s["subsets"] == {"random": 0, "div": 0, "flt": 0, "aes": 0} and s["shards"] == []
    assert len(read_parquet(tmp_path / "none" / "clips.parquet")) == 0 and (tmp_path / "none" / "internvid.jsonl").read_text() == ""
    assert all(len(read_parquet(tmp_path / "none" / "subsets" / f"{k}.parquet")) == 0 for k in ("random", "div", "flt", "aes"))
    # every clip fails captioning and scoring (models that cannot run)
    broken = SimpleNamespace(name="broken")
    s = run_curation(world.raw[["video_id", "path"]].head(1), tmp_path / "fail", CurateConfig(segment=SegmentConfig(min_scene_len=8)),
                     models=CurationModels(broken, broken, broken, broken), progress=False, log=quiet)
    assert s["clips_kept"] > 0 and s["clips_captioned"] == 0 and len(s["clip_errors"]) == s["clips_kept"]
    clips = read_parquet(tmp_path / "fail" / "clips.parquet")
    assert len(clips) == s["clips_kept"] and (clips.status == "error").all() and s["subsets"]["flt"] == 0
