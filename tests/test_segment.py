"""Segmentation: the sample world's known cuts, the still filter, and a bad video as an error row in a runner stage."""
import json
import pandas as pd
from internvid_nb.curation.segment import segment_stage, SegmentConfig, cut_scores
from internvid_nb.scale.runner import run_stage


def test_segments_of_the_raw_videos_match_their_scenes(tmp_path, world):
    videos = pd.concat([world.raw[["video_id", "path"]], pd.DataFrame([{"video_id": "gone", "path": str(tmp_path / "gone.mp4")}])], ignore_index=True)
    clips = run_stage(lambda b: segment_stage(b, SegmentConfig(min_scene_len=8)), videos, tmp_path / "seg", id_col="video_id", batch_size=2, progress=False)
    err = clips[clips.video_id == "gone"]
    assert len(err) == 1 and err.status.iloc[0] == "error" and "file not found" in err.error.iloc[0]
    ok = clips[clips.status == "ok"]
    for vid, sc in world.scenes.groupby("video_id"):
        got = ok[ok.video_id == vid].sort_values("start_frame")
        assert got.start_frame.tolist() == sc.start_frame.tolist(), vid
        labels = dict(zip(got.start_frame, got.segment))
        for _, s in sc.iterrows():
            truly_still = all(o["motion"] == "still" for o in json.loads(s.objects))
            assert (labels[s.start_frame] == "still") == truly_still, (vid, s.scene, labels[s.start_frame])


def test_cut_scores():
    assert cut_scores([10, 31, 50], [10, 30, 70]) == {"precision": 2 / 3, "recall": 2 / 3, "found": 3, "true": 3}
    assert cut_scores([], [5])["recall"] == 0.0


def test_vectorised_scores_give_pyscenedetects_cuts(world, bikes):
    """The fast path (all frame scores at once) and PySceneDetect frame by frame agree, on synthetic and real video."""
    from internvid_nb.curation.segment import detect_cuts
    from internvid_nb.data.videoio import read_range
    for path, fps, msl in [(world.raw.path[2], 8.0, 8), (bikes, 25.0, 15)]:
        f = read_range(path, None, None, size=(68, 160) if path == bikes else None)
        fast, slow = detect_cuts(f, fps, min_scene_len=msl), detect_cuts(f, fps, min_scene_len=msl, fast=False)
        assert fast == slow and len(fast) >= 3, (path, fast, slow)
