"""Evaluation: metrics on hand-made embeddings, bad input refused, ViCLIP beats its per-frame average, the explorer escapes."""
import numpy as np
import pandas as pd
import pytest
import torch
from internvid_nb.evaluation.video_text import EvalError, zero_shot, retrieval, check_embeddings, compare, save_results, load_results, cached_embeddings, encode_texts
from internvid_nb.world.comparisons import evaluate_world
from internvid_nb.models.baselines import FrameAveraged
from internvid_nb.models.scorers import ViCLIPScorer


def test_retrieval_with_several_captions_per_clip():
    v = torch.eye(3)
    t = torch.tensor([[1.0, 0, 0], [0, 0.2, 1.0], [0, 1.0, 0], [0.9, 0.1, 0.0]])
    m = retrieval(v, t, [0, 1, 1, 2])
    # captions 0 and 2 rank their clip first; caption 1 ranks its clip 2nd (after clip 2); caption 3 ranks its clip 3rd
    assert m["t2v_R@1"] == 50.0 and m["t2v_R@5"] == 100.0 and m["t2v_MnR"] == 1.75
    # clip 0: best caption rank 1; clip 1: caption 2 ranks first; clip 2: caption 1 scores 1.0 > caption 3's 0.0 -> rank 2
    assert m["v2t_R@1"] == pytest.approx(200 / 3) and m["v2t_R@5"] == 100.0
    ds = retrieval(v, t, [0, 1, 1, 2], dual_softmax=10.0)
    assert ds["n_texts"] == 4 and 0 <= ds["t2v_R@1"] <= 100


def test_bad_input_gets_clear_errors():
    with pytest.raises(EvalError, match=r"rows \[1\] hold NaN"): check_embeddings([[1.0, 0.0], [np.nan, 1.0]])
    with pytest.raises(EvalError, match="all zero"): check_embeddings([[0.0, 0.0]])
    with pytest.raises(EvalError, match="clips \\[2\\] have no caption"): retrieval(torch.eye(3), torch.eye(3)[:2], [0, 1])
    with pytest.raises(EvalError, match="classes with no clips: \\['c'\\]"):
        zero_shot(torch.eye(3)[:2], torch.eye(3), ["a", "b"], ["a", "b", "c"])
    with pytest.raises(EvalError, match="empty"): encode_texts(ViCLIPScorer(), ["a red digit", ""])


def test_viclip_beats_its_frame_average_on_motion_and_retrieval(world, tmp_path):
    test = world.clips[world.clips.split == "test"]
    res = evaluate_world(ViCLIPScorer(), test, "test", tmp_path) + evaluate_world(FrameAveraged(), test, "test", tmp_path)
    by = {(r.model, r.task): r.metrics for r in res}
    video, frames = "viclip-tiny", "viclip-tiny per-frame average"
    assert by[(video, "zero-shot motion")]["top1"] > by[(frames, "zero-shot motion")]["top1"]
    assert by[(video, "retrieval")]["t2v_R@1"] > by[(frames, "retrieval")]["t2v_R@1"] + 5
    assert by[(video, "zero-shot color")]["top1"] >= 90                # colour is easy for both: a sanity check of the prompts
    table = compare(res)
    assert table.shape[0] == 2 and "retrieval t2v_R@1" in table
    back = load_results(save_results(res, tmp_path / "r.json"))
    assert [(r.model, r.task) for r in back] == [(r.model, r.task) for r in res]


def test_cached_embeddings_do_not_reencode(world, tmp_path):
    class Counting(ViCLIPScorer):
        calls = 0
        def encode_video(self, clips):
            Counting.calls += 1
            return super().encode_video(clips)
    m = Counting()
    t = world.clips.head(5)
    a = cached_embeddings(m, tmp_path, table=t)
    b = cached_embeddings(m, tmp_path, table=t)
    assert Counting.calls == 1 and torch.equal(a, b)
    cached_embeddings(m, tmp_path, table=t.head(4))
    assert Counting.calls == 2                                          # other clips, other key


def test_explorer_escapes_and_previews(world):
    from internvid_nb.ui.explorer import explorer_table, EmbeddingExplorer
    t = world.clips[world.clips.split == "val"].head(12).reset_index(drop=True)
    t.loc[0, "caption"] = "<script>alert(1)</script>"
    m = ViCLIPScorer()
    pts = explorer_table(t, m.encode_video([np.zeros((8, 64, 64, 3), np.uint8) + i for i in range(12)]) + torch.randn(12, 64) * 0.1,
                         m.encode_text(t.caption_true.tolist()))
    ex = EmbeddingExplorer(pts, color="motion")
    ex.show(0)
    assert "<script>" not in ex.caption.value and "&lt;script&gt;" in ex.caption.value and ex.preview.value[:3] == b"GIF"
    assert all("<script>" not in h for tr in ex.fig.data for h in tr.hovertext or ())  # the overlays have none
    ex.color.value = "split"                                            # recolouring by another column works
    assert len(ex.fig.data[0].marker.color) == 12


def test_comparisons_train_every_run_and_resume(tmp_path):
    "The CPU-sized version of the paper's comparisons: image model, three training sets, masked run; a rerun loads."
    from internvid_nb.world.comparisons import run_comparisons, comparison_table, ComparisonRecipe
    r = ComparisonRecipe.tiny()
    doc = run_comparisons(tmp_path, r, log=lambda s: None)
    t = comparison_table(doc)
    assert list(t.index) == ["image model, frame average", "video, flt", "video, all", "video, random", "video, flt-masked"]
    assert t.loc["video, all", "clips"] == r.n_train and t.loc["video, random", "clips"] == t.loc["video, flt", "clips"]
    assert t.loc["video, flt-masked", "masked_steps"] == round(0.9 * r.steps * r.masked_steps_per_step)
    assert t.loc["image model, frame average", "num_frames"] == 1
    sets = doc["training_sets"]
    bad = lambda s: sum(v for k, v in sets[s].items() if k != "clean") / sum(sets[s].values())
    assert bad("flt") < bad("all")                             # the scorer's filter removes defects without reading labels
    assert {"zero-shot motion", "zero-shot digit", "zero-shot color", "retrieval"} <= {x["task"] for x in doc["results"]}
    first = (tmp_path/"video-flt"/"model"/"model.safetensors").stat().st_mtime_ns
    again = run_comparisons(tmp_path, r, log=lambda s: None)     # finished runs are loaded, not retrained
    assert (tmp_path/"video-flt"/"model"/"model.safetensors").stat().st_mtime_ns == first
    metrics = lambda d: [(x["model"], x["task"], x["metrics"]) for x in d["results"]]
    assert metrics(again) == metrics(doc)
