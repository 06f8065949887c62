"""Real footage through every stage: a 29.97 fps join, a variable-rate join and a Matroska file go through segment,
caption, score, select and export with the `internvid` commands and their defaults; times are checked against frames."""
import json, shutil, tarfile
from fractions import Fraction
from pathlib import Path
import numpy as np
import pytest
from internvid_nb.cli import main
from internvid_nb.data.schema import read_parquet
from internvid_nb.data.tables import read_table
from internvid_nb.data.videoio import frame_times, open_video, read_frames, read_range, stream_rate
from internvid_nb.world.footage import real_footage


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    "The footage in one folder, run through the five commands with their defaults (only the scene length set)."
    d = tmp_path_factory.mktemp("footage")
    foot = real_footage(d / "build")
    videos = d / "videos"
    videos.mkdir()
    for p in foot.path[:3]:  # ntsc_join.mp4, vfr_join.mp4, bikes.mkv
        shutil.copy(p, videos / Path(p).name)
    q = ["--no-progress"]
    codes = {
        "segment": main(["segment", str(videos), "--out", str(d / "seg"), "--min-scene-len", "8", *q]),
        "caption": main(["caption", str(d / "seg" / "clips.parquet"), "--out", str(d / "cap"), *q]),
        "score": main(["score", str(d / "cap" / "captions.parquet"), "--out", str(d / "score"), *q]),
        "select": main(["select", str(d / "score" / "scores.parquet"), "--out", str(d / "sel"), "--frac", "1"]),
        "export": main(["export", str(d / "sel" / "flt.parquet"), "--out", str(d / "exp")]),
    }
    return d, foot, codes


def test_every_stage_runs_on_real_footage_with_the_defaults(chain):
    d, _, codes = chain
    assert codes == {k: 0 for k in codes}, codes
    seg = read_parquet(d / "seg" / "clips.parquet")
    cap = read_parquet(d / "cap" / "captions.parquet")
    assert set(cap.clip_id) == set(seg.clip_id[seg.segment == "ok"])  # dropped clips are not captioned
    assert (seg.segment != "ok").any()  # there are some (the short pieces next to the joins)


def test_clip_times_are_the_frames_timestamps(chain):
    d, foot, _ = chain
    seg = read_parquet(d / "seg" / "clips.parquet")
    assert seg.start_frame.dtype.kind in "iu" and seg.end_frame.dtype.kind in "iu"  # frame numbers, not floats
    for _, f in foot.head(3).iterrows():
        clips = seg[seg.video_id == Path(f.path).stem]
        t = frame_times(open_video(f.path))
        np.testing.assert_allclose(clips.start, t[clips.start_frame.to_numpy(int)], atol=1e-9)
        np.testing.assert_allclose(clips.end, t[clips.end_frame.to_numpy(int)], atol=1e-9)
        if f.join_frame == f.join_frame:  # the known join starts a clip at its frame and time
            j = clips[clips.start_frame == int(f.join_frame)]
            assert len(j) == 1 and abs(j.start.iloc[0] - f.join_time) < 1e-6, clips[["start_frame", "start"]]
        for _, c in clips.iterrows():  # the time range gives back exactly the clip's frames
            got = read_range(f.path, c.start, c.end, size=(68, 160))
            assert len(got) == c.end_frame - c.start_frame
            want = read_frames(f.path, [int(c.start_frame), int(c.end_frame) - 1], size=(68, 160))
            np.testing.assert_array_equal(got[[0, -1]], want)


def test_exported_clips_keep_rate_frames_and_timing(chain):
    d, foot, _ = chain
    sel = read_parquet(d / "sel" / "flt.parquet").set_index("clip_id")
    members = {}
    for shard in sorted((d / "exp" / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for m in tar.getmembers():
                members[m.name] = tar.extractfile(m).read()
    metas = [json.loads(v) for k, v in members.items() if k.endswith(".json")]
    assert {m["clip_id"] for m in metas} == set(sel.index)
    for m in metas:
        key = next(k[:-5] for k, v in members.items() if k.endswith(".json") and json.loads(v)["clip_id"] == m["clip_id"])
        mp4 = d / f"{m['clip_id']}.mp4"
        mp4.write_bytes(members[key + ".mp4"])
        assert members[key + ".mp4"][4:8] == b"ftyp"  # MP4, also for the Matroska source
        row = sel.loc[m["clip_id"]]
        t = frame_times(open_video(mp4))
        assert len(t) - 1 == row.end_frame - row.start_frame, m["clip_id"]
        src_t = frame_times(open_video(row.path))
        s, e = int(row.start_frame), int(row.end_frame)
        np.testing.assert_allclose(t[:-1], src_t[s:e] - src_t[s], atol=2e-3)  # timing kept (VFR too)
        if row.video_id == "ntsc_join":
            assert stream_rate(mp4) == Fraction(30000, 1001)
        a = read_frames(mp4, [0, e - s - 1], size=(68, 160)).astype(int)
        b = read_frames(row.path, [s, e - 1], size=(68, 160)).astype(int)
        assert np.abs(a - b).mean() < 6, m["clip_id"]  # the same pictures, re-encoded


def test_our_jsonl_reads_back_with_every_score_in_its_column(chain):
    d, _, _ = chain
    sel = read_parquet(d / "sel" / "flt.parquet").set_index("clip_id")
    rec = json.loads((d / "exp" / "internvid.jsonl").read_text().splitlines()[0])
    assert "UMT_Score" in rec and "Aesthetic_Score" in rec  # the release's field names
    assert rec["internvid_nb"]["sim_model"] == "viclip-tiny"
    assert rec["internvid_nb"]["aes_model"].startswith("technical-quality")  # the stand-in is named
    back = read_table(d / "exp" / "internvid.jsonl").set_index("clip_id").loc[sel.index]
    for col in ("sim_score", "aes_score", "motion_score", "sampled_motion", "change_score", "start_frame", "caption_summary"):
        assert col in back, col
        if back[col].dtype.kind == "f":
            np.testing.assert_allclose(back[col].astype(float), sel[col].astype(float), rtol=1e-6, err_msg=col)
        else:
            assert back[col].tolist() == sel[col].tolist(), col
    assert back.sim_model.unique().tolist() == ["viclip-tiny"]
    # select reads the jsonl too
    assert main(["select", str(d / "exp" / "internvid.jsonl"), "--out", str(d / "sel2"), "--subset", "random", "--frac", "1"]) == 0
