"""Bad inputs and faults, one kind per test: each names the item and the cause, the batch goes on, finished work is kept."""
import errno, shutil, subprocess
from pathlib import Path
import av
import numpy as np
import pandas as pd
import pytest
import torch
from internvid_nb.cli import main
from internvid_nb.data.tables import read_table
from internvid_nb.pipeline.commands import EXIT_CODES, EXIT_INPUT, EXIT_ITEMS_FAILED, EXIT_OK, EXIT_OS, EXIT_USAGE
from internvid_nb.data.core import repo_root
from internvid_nb.data.shards import read_shards
from internvid_nb.data.schema import read_internvid_jsonl


def _clips(world, n=6) -> pd.DataFrame:
    return world.clips.head(n)[["clip_id", "video_id", "path", "start", "end", "caption"]].reset_index(drop=True)


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        for i in range(8):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 16000, i * 1024
            for p in s.encode(f): c.mux(p)
        for p in s.encode(): c.mux(p)
    return path


def test_export_writes_only_the_clips_it_exports_and_never_a_nan_caption(world, tmp_path, capsys):
    t = _clips(world)
    t.loc[1, ["start", "end"]] = [2.0, 1.0]                       # end before start
    t.loc[2, "start"] = -1.0                                      # negative time
    t.loc[3, "path"] = str(tmp_path / "broken.mp4"); (tmp_path / "broken.mp4").write_bytes(b"not a video")
    t.loc[4, "caption"] = None                                    # no caption
    t.loc[5, ["start", "end"]] = [np.nan, np.nan]                 # the whole file: exported, with its real end
    t.to_parquet(tmp_path / "t.parquet")
    assert main(["export", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "o")]) == EXIT_ITEMS_FAILED
    err = capsys.readouterr().err
    for cid, cause in ((1, "is not after start"), (2, "is negative"), (3, "not a readable video"), (4, "no caption in column 'caption'")):
        assert f"failed: {t.clip_id[cid]}: " in err and cause in err, (cid, err)
    text = (tmp_path / "o" / "internvid.jsonl").read_text()
    assert "NaN" not in text
    back, issues = read_internvid_jsonl(tmp_path / "o" / "internvid.jsonl", strict=True)
    assert issues == [] and list(back.video_id) == [t.video_id[0], t.video_id[5]]
    assert back.end[1] == pytest.approx(world.clips.end[5], abs=0.01)
    samples = list(read_shards(sorted((tmp_path / "o" / "shards").glob("*.tar"))))
    assert [x["json"]["clip_id"] for x in samples] == [t.clip_id[0], t.clip_id[5]]            # the jsonl's two clips, no more
    assert [x["txt"] for x in samples] == [t.caption[0], t.caption[5]]


@pytest.mark.parametrize("argv, option, rule", [
    (["export", "T", "--shard-size", "0"], "--shard-size", "must be an integer >= 1"),
    (["export", "T", "--shard-size", "-1"], "--shard-size", "must be an integer >= 1"),
    (["caption", "T", "--batch-size", "-1"], "--batch-size", "must be an integer >= 1"),
    (["caption", "T", "--batch-size", "0"], "--batch-size", "must be an integer >= 1"),
    (["score", "T", "--workers", "0"], "--workers", "must be an integer >= 1"),
    (["select", "T", "--frac", "-2"], "--frac", "must be a number > 0 and <= 1"),
    (["select", "T", "--dup-threshold", "nan"], "--dup-threshold", "out of range"),
    (["segment", "T", "--min-scene-len", "0"], "--min-scene-len", "must be an integer >= 1"),
    (["segment", "T", "--threshold", "abc"], "--threshold", "is not a number"),
    (["generate", "a cat", "--fps", "0"], "--fps", "must be an integer >= 1"),
    (["generate", "a cat", "--steps", "0"], "--steps", "must be an integer >= 1"),
    (["pipeline", "T", "--workers", "-3"], "--workers", "must be an integer >= 0"),
    (["train", "--batch-size", "0"], "--batch-size", "must be an integer >= 1"),
    (["train", "--masking", "1"], "--masking", "must be a number >= 0 and < 1"),
])
def test_every_numeric_option_is_checked_when_parsed_exit_2_naming_it(argv, option, rule, tmp_path, capsys):
    (tmp_path / "shards").mkdir(); (tmp_path / "shards" / "shard-000000.tar").write_bytes(b"earlier run")
    argv = [str(tmp_path / "t.parquet") if x == "T" else x for x in argv] + ["--out", str(tmp_path)]
    with pytest.raises(SystemExit) as e: main(argv)
    assert e.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"argument {option}: " in err and rule in err, err
    assert (tmp_path / "shards" / "shard-000000.tar").exists()   # nothing was deleted


def test_tables_are_checked_on_read_naming_column_row_and_type(world, tmp_path, capsys):
    t = _clips(world)
    nan_path = t.assign(path=t.path.astype(object)); nan_path.loc[2, "path"] = np.nan
    (tmp_path / "nan").write_bytes((Path(world.clips.path[0])).read_bytes())    # a file named "nan" must not be read in its place
    nan_path.to_parquet(tmp_path / "p.parquet")
    assert main(["caption", str(tmp_path / "p.parquet"), "--out", str(tmp_path / "o1"), "--no-progress"]) == EXIT_INPUT
    assert f"column 'path', row 2 (clip_id '{t.clip_id[2]}'): expected non-empty text, got nan" in capsys.readouterr().err
    t.assign(start=["0", "1", "x", "0", "0", "0"]).to_parquet(tmp_path / "s.parquet")
    assert main(["score", str(tmp_path / "s.parquet"), "--out", str(tmp_path / "o2"), "--no-progress"]) == EXIT_INPUT
    assert f"column 'start', row 0 (clip_id '{t.clip_id[0]}'): expected a number (seconds), got '0' (and 5 more rows)" in capsys.readouterr().err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    # a NaN or pd.NA end is the whole file: scored, not an error
    t["end"] = t.end.astype("Float64"); t.loc[1, "end"] = pd.NA
    t.to_parquet(tmp_path / "e.parquet")
    assert main(["score", str(tmp_path / "e.parquet"), "--out", str(tmp_path / "o3"), "--no-progress"]) == EXIT_OK
    # ids from a csv keep their leading zeros; a categorical column is fine; an empty table is read as empty
    t.assign(clip_id=[f"00{i}" for i in range(6)]).to_csv(tmp_path / "c.csv", index=False)
    assert list(read_table(tmp_path / "c.csv").clip_id) == [f"00{i}" for i in range(6)]
    t.assign(video_id=pd.Categorical(["v"] * 6)).to_parquet(tmp_path / "cat.parquet")
    assert list(read_table(tmp_path / "cat.parquet").video_id) == ["v"] * 6
    t.iloc[:0].to_parquet(tmp_path / "empty.parquet")
    assert main(["export", str(tmp_path / "empty.parquet"), "--out", str(tmp_path / "o4")]) == EXIT_OK
    assert (tmp_path / "o4" / "internvid.jsonl").read_text() == "" and "export: 0 of 0 clips" in capsys.readouterr().out


def _small_fs(path: Path, *options: str) -> bool:
    "Mount a 256 KiB tmpfs at `path` (root, as here and in CI); False where mounting is not allowed."
    path.mkdir()
    opts = ",".join(("size=256k",) + options)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True).returncode == 0


def _unmount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True)


@pytest.mark.parametrize("fault", ["output under a file", "output is a file", "read-only", "disk full"])
def test_os_errors_exit_6_with_one_line_naming_the_path_and_cause(fault, world, tmp_path, capsys, monkeypatch):
    t = _clips(world, 3)
    t.to_parquet(tmp_path / "t.parquet")
    fs = tmp_path / "fs"
    if fault == "output under a file":
        (tmp_path / "afile").write_text("x"); out, cause = tmp_path / "afile" / "o", "Not a directory"
    elif fault == "output is a file":
        (tmp_path / "o").write_text("x"); out, cause = tmp_path / "o", "Not a directory"
    else:
        mounted = _small_fs(fs, "ro") if fault == "read-only" else _small_fs(fs)
        out = fs / "o"
        cause = "Read-only file system" if fault == "read-only" else "No space left on device"
        if not mounted:                                           # no mount here: the same error raised by the writer
            code = errno.EROFS if fault == "read-only" else errno.ENOSPC
            import internvid_nb.data.shards as ex
            def refuse(*a, **k): raise OSError(code, cause)
            monkeypatch.setattr(ex.tarfile, "open", refuse)
            out = tmp_path / "o"
    try:
        if fault == "disk full" and out.parent == fs:             # fill all but a little of the disk
            (fs / "filler").write_bytes(b"\0" * (256 * 1024 - 20000))
        rc = main(["export", str(tmp_path / "t.parquet"), "--out", str(out)])
    finally:
        if fs.exists(): _unmount(fs)
    err = capsys.readouterr().err.strip()
    assert rc == EXIT_OS, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err and cause in err and str(tmp_path) in err, err
    assert EXIT_OS in EXIT_CODES


def test_a_refused_unsafe_checkpoint_exits_4_with_one_message_everywhere(tmp_path, world, capsys):
    class Evil:
        def __reduce__(self): return (print, ("this must never run",))
    cap = tmp_path / "cap"
    shutil.copytree(repo_root() / "data_samples" / "models" / "captioner-tiny", cap)
    (cap / "model.safetensors").unlink(); torch.save({"x": Evil()}, cap / "pytorch_model.bin")
    run = tmp_path / "run"; run.mkdir(); torch.save({"x": Evil()}, run / "last.pt")
    _clips(world, 2).to_parquet(tmp_path / "t.parquet")
    for argv in (["caption", str(tmp_path / "t.parquet"), "--captioner", str(cap), "--out", str(tmp_path / "o"), "--no-progress"],
                 ["train", "--clips", str(tmp_path / "t.parquet"), "--out", str(run), "--max-steps", "1", "--batch-size", "2"]):
        assert main(argv) == EXIT_INPUT
        out = capsys.readouterr()
        assert "this must never run" not in out.out
        err = out.err.strip()
        assert len(err.splitlines()) == 1 and "refused to load" in err and "Traceback" not in err, err


def test_an_audio_only_file_is_said_to_have_no_video_stream(world, tmp_path, capsys):
    t = _clips(world, 2)
    t.loc[1, "path"] = str(_audio_only(tmp_path / "talk.m4a"))
    t.to_parquet(tmp_path / "t.parquet")
    assert main(["score", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "o"), "--no-progress"]) == EXIT_ITEMS_FAILED
    err = capsys.readouterr().err
    assert f"failed: {t.clip_id[1]}: " in err and "has no video stream (only audio streams)" in err and "damaged" not in err


def test_control_characters_in_ids_are_escaped_in_every_message(world, tmp_path, capsys):
    t = _clips(world, 2)
    t.loc[1, "clip_id"] = "evil\x1b]0;owned\x07\x1b[2J\rid\nfailed: forged"
    t.loc[1, "path"] = str(tmp_path / "gone.mp4")
    t.to_parquet(tmp_path / "t.parquet")
    assert main(["score", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "o"), "--no-progress"]) == EXIT_ITEMS_FAILED
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "\r" not in err
    assert "evil\\x1b]0;owned\\x07\\x1b[2J\\x0did\\x0afailed: forged" in err and "\nfailed: forged" not in err
    with pytest.raises(SystemExit) as e: main(["score", "t.parquet", "--out", "o", "--bogus\x1b[2J"])     # argparse's own errors too
    assert e.value.code == EXIT_USAGE and "--bogus\\x1b[2J" in capsys.readouterr().err


def test_scoring_a_clip_without_caption_is_an_error_row(world, tmp_path, capsys):
    t = _clips(world, 3)
    t.loc[1, "caption"] = None; t.loc[2, "caption"] = "  "
    t.to_parquet(tmp_path / "t.parquet")
    assert main(["score", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "o"), "--no-progress"]) == EXIT_ITEMS_FAILED
    s = pd.read_parquet(tmp_path / "o" / "scores.parquet").set_index("clip_id")
    assert list(s.status) == ["ok", "error", "error"] and s.error.iloc[1] == "no caption in column 'caption' to score against"
    assert s.sim_score.iloc[1:].isna().all()


def test_the_explorer_shows_points_whose_caption_is_none(world):
    from internvid_nb.ui.explorer import EmbeddingExplorer
    t = _clips(world, 8)
    p = pd.concat([t.assign(kind="video"), t.assign(kind="text")], ignore_index=True)
    p = p.assign(x=np.arange(16.0), y=np.arange(16.0)[::-1])
    p.loc[2, "caption"] = None; p.loc[3, "caption"] = np.nan
    e = EmbeddingExplorer(p)
    e.show(2)
    assert "<p></p>" in e.caption.value and "None" not in e.caption.value and "nan" not in e.fig.data[0].hovertext[3]


def test_the_readme_exit_code_table_is_the_one_the_command_uses():
    readme = (repo_root() / "README.md").read_text()
    rows = dict(line.strip("|").split("|", 1) for line in readme.splitlines() if line.startswith("| ") and line.split("|")[1].strip().isdigit())
    assert {int(k): v.strip(" |") for k, v in rows.items()} == EXIT_CODES


def test_a_model_folder_missing_its_weights_exits_4_naming_it(tmp_path, capsys):
    model = tmp_path / "t2v"
    shutil.copytree(repo_root() / "data_samples" / "models" / "t2v-tiny", model)
    for f in model.rglob("*.safetensors"): f.unlink()
    assert main(["generate", "a red 3", "--model", str(model), "--steps", "1", "--out", str(tmp_path / "o")]) == EXIT_INPUT
    err = capsys.readouterr().err.strip()                                    # (diffusers logs a warning line first)
    assert err.splitlines()[-1].startswith("internvid generate: ") and "no file named" in err, err
    assert "Traceback" not in err and "file system" not in err, err


def test_a_truncated_video_keeps_its_clips_before_the_damage_and_names_the_rest(tmp_path, capsys):
    # a download cut short (index first, the last 10% of the bytes gone): decord refuses the whole file; the clips
    # before the damage are kept with the frames and cuts of the whole file, the rest is one error row naming it
    from internvid_nb.data.damaged import truncated_copy
    from internvid_nb.world.sampleworld import real_clips
    bikes = real_clips().set_index("name").loc["bikes.mp4", "path"]
    (tmp_path / "videos").mkdir()
    shutil.copy(bikes, tmp_path / "videos" / "whole.mp4")
    truncated_copy(bikes, tmp_path / "videos" / "cut.mp4")
    assert main(["segment", str(tmp_path / "videos"), "--out", str(tmp_path / "seg"), "--no-progress"]) == EXIT_ITEMS_FAILED
    err = capsys.readouterr().err
    assert "failed: cut: frames 207..249 of the 250 the stream indexes (from 8.280 s) were not read" in err
    clips = read_table(tmp_path / "seg" / "clips.parquet")
    whole, cut = (clips[clips.video_id == v].reset_index(drop=True) for v in ("whole", "cut"))
    assert (whole.status == "ok").all() and cut.status.tolist() == ["ok"] * 5 + ["error"]
    assert cut.start_frame.tolist()[:4] == whole.start_frame.tolist()[:4] == [0, 30, 76, 137]       # the same cuts
    np.testing.assert_allclose(cut.start[:5], whole.start[:5])
    ok = cut[cut.segment == "ok"].assign(caption="bikes")
    ok.to_parquet(tmp_path / "ok.parquet")
    assert main(["export", str(tmp_path / "ok.parquet"), "--out", str(tmp_path / "e")]) == EXIT_OK        # cut from the damaged file
    samples = list(read_shards(sorted((tmp_path / "e" / "shards").glob("*.tar"))))
    assert len(samples) == 4
    last = samples[-1]["mp4"]; (tmp_path / "last.mp4").write_bytes(last)   # cut_0003: frames 137..186 of the whole file
    from internvid_nb.data.videoio import read_range
    got, want = read_range(tmp_path / "last.mp4", None, None), read_range(bikes, cut.start[3], cut.end[3])
    assert len(got) == len(want) == 50 and np.abs(got.astype(int) - want).mean() < 4


def test_a_video_damaged_in_the_middle_keeps_every_frame_before_the_damage(tmp_path, capsys):
    # 20 kB of zeros a third of the way into bikes: decord opens it and fails on a chunk; that chunk is decoded
    # again frame by frame, so the clips before the damage keep the whole file's cuts; an audio-only file is named so
    from internvid_nb.world.sampleworld import real_clips
    bikes = Path(real_clips().set_index("name").loc["bikes.mp4", "path"])
    (tmp_path / "videos").mkdir()
    b = bytearray(bikes.read_bytes()); b[len(b) // 3 : len(b) // 3 + 20000] = bytes(20000)
    (tmp_path / "videos" / "mid.mp4").write_bytes(bytes(b))
    _audio_only(tmp_path / "videos" / "talk.m4a")
    assert main(["segment", str(tmp_path / "videos"), "--out", str(tmp_path / "seg"), "--no-progress"]) == EXIT_ITEMS_FAILED
    err = capsys.readouterr().err
    clips = read_table(tmp_path / "seg" / "clips.parquet")
    mid = clips[clips.video_id == "mid"].reset_index(drop=True)
    damaged = mid[mid.status == "error"]
    assert len(damaged) == 1 and f"failed: mid: frames {damaged.start_frame.iloc[0]}..249 of the 250" in err
    at = int(damaged.start_frame.iloc[0])
    assert at == 84                          # inside the first chunk of 128 frames, which fails as a whole in decord
    ok = mid[mid.status == "ok"]
    assert ok.end_frame.max() == at and ok.start_frame.tolist()[:2] == [0, 30]   # bikes' own first cut at 30
    from internvid_nb.curation.segment import segment_video
    from internvid_nb.data.clipio import clip_mp4
    from internvid_nb.data.videoio import VideoError
    for f in (lambda p: segment_video(p), lambda p: clip_mp4(p, 0.0, 0.1)):   # PyAV cannot read it either: decord's cause
        with pytest.raises(VideoError, match=r"has no video stream \(only audio streams\)"):
            f(tmp_path / "videos" / "talk.m4a")
