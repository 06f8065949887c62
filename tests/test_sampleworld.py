"""The sample world: bit-for-bit regeneration, held-out combinations, defects, captions and cuts match the frames."""
import json
import numpy as np
import pytest
from internvid_nb.world.sampleworld import check_world, DEFECTS, real_clips, sample_world_dir, main
from internvid_nb.world.render import render_clip, holdout_combos, MOTIONS, COLORS, _state
from internvid_nb.data.videoio import read_frames, probe


def test_shipped_world_regenerates_bit_for_bit(world):
    assert check_world(world.root) == []


def test_cli_check_reports_a_changed_file(tmp_path):
    import shutil
    shutil.copytree(sample_world_dir(), tmp_path / "w")
    p = tmp_path / "w" / "clips" / "test_0003.mp4"
    p.write_bytes(p.read_bytes()[:-10])
    assert main(["--check", str(tmp_path / "w")]) == 1


def test_splits_hold_out_combinations(world):
    c, held = world.clips, holdout_combos(world.config)
    trainval = c[c.split != "test"]
    assert not set(zip(trainval.digit, trainval.motion, trainval.color)) & held
    assert not set(zip(trainval.digit2, trainval.motion2, trainval.color2)) & held
    test = c[c.split == "test"]
    assert set(zip(test.digit, test.motion, test.color)) <= held
    # yet every digit, motion and colour on its own is seen in training
    tr = c[c.split == "train"]
    assert set(tr.digit) == set(range(10)) and set(tr.motion) == set(MOTIONS) and set(tr.color) == set(COLORS)


def test_defects_are_real_in_the_decoded_frames(world):
    c = world.clips.set_index("clip_id")
    bad = c[c.defect != ""]
    assert set(bad.defect) == set(DEFECTS) and (bad.split == "train").all()
    assert abs(len(bad) / (c.split == "train").sum() - world.config.bad_share) < 0.01
    clean_mean = np.mean([read_frames(p, segments_all()).mean() for p in c[c.defect == ""].path[:40]])
    sharp = lambda f: np.square(np.diff(f.astype(np.float32), axis=2)).mean()   # gradient energy
    for cid, r in bad.iterrows():
        f = read_frames(r.path, segments_all())
        if r.defect == "dark": assert f.mean() < 0.3 * clean_mean
        if r.defect == "frozen": assert np.abs(np.diff(f.astype(np.float32), axis=0)).mean() < 0.5
        if r.defect == "duplicate": assert (world.root / "clips" / f"{cid}.mp4").read_bytes() == (world.root / "clips" / f"{r.dup_of}.mp4").read_bytes()
        if r.defect == "mismatch": assert r.caption != r.caption_true
        if r.defect == "blur":
            # the same scene rendered again without the defect is much sharper
            clean = render_clip(json.loads(r.objects), r.background, world.config.n_frames, world.config.size)
            assert sharp(f) < 0.5 * sharp(clean)
    clean = c[c.defect == ""]
    assert (clean.caption == clean.caption_true).all()


def segments_all():
    return range(24)


def test_captions_agree_with_tracks_and_pixels(world):
    c = world.clips
    for _, r in c[(c.defect == "") & (c.n_objects == 1) & c.motion.isin(["left", "right", "up", "down"])].head(12).iterrows():
        obj = json.loads(r.objects)[0]
        f = read_frames(r.path, [0, 23]).astype(np.float32)
        bg = np.median(f[0].reshape(-1, 3), axis=0)
        centres = []
        for fr in f:
            ys, xs = np.nonzero(np.abs(fr - bg).sum(-1) > 60)
            centres.append((xs.mean(), ys.mean()))
        (x0, y0), (x1, y1) = centres
        d = {"right": x1 - x0, "left": x0 - x1, "down": y1 - y0, "up": y0 - y1}[r.motion]
        assert d > 20, (r.clip_id, r.motion, centres)
        assert abs(x0 - _state(obj, 0)[0]) < 6 and abs(y1 - _state(obj, 1)[1]) < 6
        first, last = r.frame_captions[0], r.frame_captions[-1]
        word = {"right": ("left", "right"), "left": ("right", "left"), "down": ("top", "bottom"), "up": ("bottom", "top")}[r.motion]
        assert word[0] in first and word[1] in last and f"{r.color} digit {r.digit}" in first
        assert r.caption == f"a {r.color} digit {r.digit} {MOTIONS[r.motion]} on a {r.background} background"


def test_raw_video_cuts_are_where_the_frames_jump(world):
    for _, r in world.raw.iterrows():
        f = read_frames(r.path, range(r.n_frames)).astype(np.float32)
        jump = np.abs(np.diff(f, axis=0)).mean(axis=(1, 2, 3))
        top = sorted((np.argsort(jump)[-len(r.cuts):] + 1).tolist())
        assert top == list(r.cuts), r.video_id
        sc = world.scenes[world.scenes.video_id == r.video_id]
        assert sc.start_frame.tolist()[1:] == list(r.cuts) and sc.end_frame.iloc[-1] == r.n_frames


def test_real_clips_with_attribution():
    rc = real_clips()
    assert set(rc.name) == {"bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"}
    assert all(len(a) > 20 for a in rc.attribution)
    assert probe(rc.set_index("name").loc["bikes.mp4", "path"]).n_frames == 250


def test_size_budget(world):
    total = sum(p.stat().st_size for p in world.root.rglob("*") if p.is_file())
    assert total < 50e6 and len(world.clips) >= 300
