"""Video I/O: bad input, samplings, decode-once, ranges, resize, writing."""
import subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from internvid_nb.data.videoio import VideoError, open_video, probe, probe_many, read_samplings, read_frames, read_range, segments, middle, at_fps, write_mp4, mp4_bytes, write_gif, frame_strip


def _faststart_mp4(tmp_path, frames, fps=8):
    "An MP4 with its index at the front, so that a truncated copy still opens and fails while decoding."
    import av
    p = tmp_path / "fast.mp4"
    with av.open(str(p), "w", format="mp4", options={"movflags": "+faststart"}) as c:
        s = c.add_stream("libx264", rate=fps, options={"g": "1000"})
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")): c.mux(pkt)
        for pkt in s.encode(): c.mux(pkt)
    return p


@pytest.mark.parametrize("name,content,cause", [
    ("missing.mp4", None, "file not found"),
    ("zero.mp4", b"", "empty file (0 bytes)"),
    ("text.mp4", b"just some text, not a video\n" * 10, "no video container signature"),
    ("random.avi", bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), "not a readable video"),
])
def test_bad_files_name_path_and_cause(tmp_path, name, content, cause):
    p = tmp_path / name
    if content is not None: p.write_bytes(content)
    with pytest.raises(VideoError) as e: probe(p)
    assert e.value.path == str(p) and cause in e.value.cause and name in str(e.value)
    with pytest.raises(VideoError): read_frames(p, segments(4))


def test_directory_and_truncated_index(tmp_path, bikes):
    with pytest.raises(VideoError, match="is a directory"): open_video(tmp_path)
    cut = tmp_path / "cut.mp4"; cut.write_bytes(Path(bikes).read_bytes()[:200_000])   # moov atom at the end is lost
    with pytest.raises(VideoError, match="truncated"): open_video(cut)


def test_truncated_stream_with_index_in_front(tmp_path, world):
    frames = np.concatenate([read_frames(p, range(24)) for p in world.clips.path[:8]])   # 192 frames, one keyframe
    p = _faststart_mp4(tmp_path, frames)
    assert read_frames(p, range(150, 190)).shape == (40, 64, 64, 3)
    cut = tmp_path / "cut_fast.mp4"; cut.write_bytes(p.read_bytes()[: p.stat().st_size // 3])
    with pytest.raises(VideoError, match="cut_fast.mp4.*(damaged|truncated)"): read_frames(cut, range(150, 190))


def test_out_of_range_indices_are_a_video_error(bikes, world):
    with pytest.raises(VideoError, match="outside the 250 frames"): read_frames(bikes, [0, 250])
    raw = world.raw.iloc[0]
    sc = world.scenes[world.scenes.video_id == raw.video_id].iloc[0]
    n = sc.end_frame - sc.start_frame
    with pytest.raises(VideoError, match=f"outside the {n} frames"): read_frames(raw.path, [n], start=sc.start, end=sc.end)


def test_batch_goes_on_after_bad_items(tmp_path, bikes):
    (tmp_path / "zero.mp4").write_bytes(b"")
    rows = probe_many([bikes, tmp_path / "zero.mp4", tmp_path / "nope.mp4", bikes])
    assert [r.status for r in rows] == ["ok", "error", "error", "ok"]
    assert "empty file" in rows[1].error and "file not found" in rows[2].error
    assert rows[3].value.n_frames == 250


def test_probe_sample_clip(world):
    info = probe(world.clips.path[0])
    assert (info.fps, info.n_frames, info.width, info.height, info.codec) == (8.0, 24, 64, 64, "h264")
    assert info.duration == pytest.approx(3.0)


def test_samplings_follow_the_release():
    # the release's get_frame_indices: segment boundaries linspace(0, n, k+1); start / middle / random inside
    n, k = 37, 8
    edges = np.linspace(0, n, k + 1).astype(int)
    assert list(segments(k, "start")(n, 8.0)) == list(edges[:-1])
    assert list(segments(k, "middle")(n, 8.0)) == [(a + b - 1) // 2 for a, b in zip(edges[:-1], edges[1:])]
    for seed in range(5):
        r = segments(k, "random")(n, 8.0, np.random.default_rng(seed))
        assert all(a <= v < b for v, a, b in zip(r, edges[:-1], edges[1:]))
    assert len(segments(8)(3, 8.0)) == 8 and list(segments(8)(3, 8.0))[-6:] == [2] * 6
    assert list(at_fps(2)(24, 8.0)) == [2, 6, 10, 14, 18, 22]   # 3 s at 2 fps: middles of six equal shares
    with pytest.raises(ValueError, match="pick"): segments(8, "end")


def test_decode_once_equals_separate_decodes(world):
    p = world.clips.path[5]
    s = {"a": middle(), "b": at_fps(1), "c": segments(8, "middle"), "d": segments(4, "random")}
    once = read_samplings(p, s, seed=3)
    for k, fn in s.items():
        np.testing.assert_array_equal(once[k], read_frames(p, fn, seed=3))
    assert once["a"].shape == (1, 64, 64, 3) and once["b"].shape == (3, 64, 64, 3) and once["c"].dtype == np.uint8


def test_time_range_of_a_raw_video_matches_its_scene(world):
    raw = world.raw.iloc[0]
    sc = world.scenes[world.scenes.video_id == raw.video_id].iloc[1]
    every = read_frames(raw.path, range(raw.n_frames))
    got = read_range(raw.path, sc.start, sc.end)
    assert len(got) == sc.end_frame - sc.start_frame
    np.testing.assert_array_equal(got, every[sc.start_frame: sc.end_frame])
    half = read_range(raw.path, sc.start, sc.end, rate=1)
    assert len(half) == max(1, int((sc.end - sc.start) * 1))


def test_resize_on_decode(bikes):
    f = read_frames(bikes, segments(4), size=(136, 320))
    assert f.shape == (4, 136, 320, 3)
    full = read_frames(bikes, segments(4)).astype(np.float32)
    # the resized frames show the same picture: compare against a 2x box-downscale of the full frames
    box = full.reshape(4, 136, 2, 320, 2, 3).mean(axis=(2, 4))
    assert np.abs(box - f).mean() < 8


def test_write_mp4_and_gif_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.zeros((10, 33, 47, 3), np.uint8)
    for i in range(10): frames[i, 5:20, 2 + 3 * i: 12 + 3 * i] = (200, 80, 20)   # a moving block, odd size
    p = write_mp4(tmp_path / "a.mp4", frames, fps=5)
    back = read_frames(p, range(10))
    assert back.shape == (10, 34, 48, 3)                                            # padded to even size
    assert np.abs(back[:, :33, :47].astype(int) - frames).mean() < 6
    assert probe(p).fps == 5.0 and mp4_bytes(frames, 5) == p.read_bytes()
    g = write_gif(tmp_path / "a.gif", frames, fps=5)
    from PIL import Image
    assert Image.open(g).n_frames == 10
    with pytest.raises(ValueError, match="uint8"): mp4_bytes(frames.astype(np.float64))
    with pytest.raises(ValueError, match="non-empty"): mp4_bytes(frames[:0])
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.gif", "a.mp4"]       # no temporaries left


def test_frame_strip_shape():
    frames = np.zeros((24, 64, 64, 3), np.uint8)
    assert frame_strip(frames, n=8, pad=2).shape == (64, 8 * 66 - 2, 3)
    assert frame_strip(frames, n=4, height=32).shape == (32, 4 * 34 - 2, 3)
