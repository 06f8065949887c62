"""Scores and subsets: bad clips are error rows, quality sees darkness and blur, subsets follow the paper."""
import numpy as np
import pandas as pd
import pytest
from internvid_nb.models.scorers import ViCLIPScorer, quality_score
from internvid_nb.curation.filter import score_stage, subset_div, subset_flt, subset_aes, subset_random, find_duplicates
from internvid_nb.data.videoio import read_frames, segments


def test_score_stage_scores_and_reports_bad_clips(world, tmp_path):
    rows = world.clips[world.clips.split == "val"].head(4)[["clip_id", "path", "caption", "start", "end"]]
    bad = pd.DataFrame([{"clip_id": "gone", "path": str(tmp_path / "gone.mp4"), "caption": "x", "start": 0.0, "end": 1.0}])
    out = score_stage(pd.concat([rows, bad], ignore_index=True), ViCLIPScorer())
    assert out.clip_id.tolist() == rows.clip_id.tolist() + ["gone"]
    assert out.status.tolist() == ["ok"] * 4 + ["error"] and "file not found" in out.error.iloc[-1]
    ok = out.iloc[:4]
    assert ok.sim_score.between(-1, 1).all() and (ok.sim_model == "viclip-tiny").all() and (ok.caption_words > 5).all()
    # each clip matches its own caption better than the other clips' captions
    s = ScorerMatrix(rows)
    assert (s.argmax(1) == np.arange(4)).mean() >= 0.75


def ScorerMatrix(rows):
    sc = ViCLIPScorer()
    v = sc.encode_video([read_frames(p, range(24)) for p in rows.path])
    t = sc.encode_text(list(rows.caption))
    return (t @ v.T).numpy()


def test_quality_sees_dark_and_blur(world):
    c = world.clips
    clean = [quality_score(read_frames(p, segments(4, "middle"))) for p in c[c.defect == ""].path[:30]]
    for d in ("dark", "blur"):
        bad = [quality_score(read_frames(p, segments(4, "middle"))) for p in c[c.defect == d].path]
        assert np.median(bad) < np.median(clean), d


def test_subsets():
    df = pd.DataFrame({"clip_id": [f"c{i}" for i in range(100)], "video_id": ["big"] * 90 + [f"v{i}" for i in range(10)],
                       "start": 0.0, "end": np.r_[np.full(95, 5.0), [0.5] * 5], "sim_score": np.linspace(0, 1, 100), "aes_score": np.linspace(0, 10, 100)})
    flt = subset_flt(df, 0.3)
    assert len(flt) == 28 and flt.sim_score.min() > df[df.end > 1].sim_score.quantile(0.69)      # the 5 short clips are out first
    assert len(subset_aes(df, 4.0)) == 60 and subset_random(df, 10, 1).clip_id.is_unique
    picks = pd.concat([subset_div(df, 10, seed=s) for s in range(50)])
    assert picks.clip_id.groupby(picks.index).size().max() <= 50 and (picks.video_id != "big").mean() > 0.35   # 10% of clips, far more of the draws
    assert all(subset_div(df, 10, seed=s).clip_id.is_unique for s in range(5))


def test_find_duplicates_marks_the_later_copy():
    e = np.random.default_rng(0).normal(size=(5, 8))
    e[3] = e[1]
    assert find_duplicates(e, list("abcde")) == ["", "", "", "b", ""]
