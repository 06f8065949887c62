"""The main job runs end to end on data_samples and escapes what it puts into HTML."""
import json, shutil
import pandas as pd
from internvid_nb.demo import run_demo
from internvid_nb.pipeline.html import write_report


def test_demo_end_to_end(tmp_path):
    s = run_demo(tmp_path, verify=False, log=lambda *a: None)
    assert s["probed"] == {"ok": 361, "error": 0}
    assert s["decode_once"]["clips"] == 352 and s["decode_once"]["errors"] == 0 and s["decode_once"]["frames"] == 352 * (1 + 3 + 8)
    html = (tmp_path / "index.html").read_text()
    assert "bikes.mp4" in html and "Big Buck Bunny" in html and html.count("<img") == 30 and html.count("<video") == 8  # 21 + the corpus section's 3 + 6 FLT previews; 4 generated mp4s, each beside a real clip
    assert "Corpus statistics" in html and s["corpus"][0]["table"] == "sample world clips" and s["corpus"][0]["clips"] == 352
    lines = (tmp_path / "tables" / "clips.jsonl").read_text().splitlines()
    assert len(lines) == 352 and json.loads(lines[0])["YoutubeID"] == "train_0000"
    assert json.loads((tmp_path / "summary.json").read_text())["clips"]["train"] == 256
    assert s["segmentation"]["cuts"] == 28 and s["segmentation"]["recall"] == 1.0 and s["segmentation"]["clips"]["still"] == 3
    cur = s["curation"]
    assert cur["clips_captioned"] == cur["clips_kept"] > 20 and cur["clip_errors"] == [] and cur["subsets"]["flt"] > 0
    summ = {r["scale"]: r for r in s["captioning_test"]}
    assert summ["summary"]["color"] >= 0.7 and summ["coarse"]["motion"] == 0.0
    run = tmp_path / "pipeline"                     # written by the end-to-end pipeline of data_samples/pipeline.toml
    assert (run / "curation" / "internvid.jsonl").exists() and list((run / "curation" / "shards").glob("*.tar"))
    assert len(list((run / "figures").glob("preview_*.gif"))) == 6 and len(list((run / "generate").glob("*.mp4"))) == 8
    # the paper's published numbers beside ours
    assert "Beside the paper&#x27;s published numbers" in html or "Beside the paper's published numbers" in html
    assert "K400, ViCLIP-L + InternVid-10M-FLT" in html and "MSR-VTT, ViCLIP-L + 10M-FLT" in html  # for reference
    assert "none: the sample world, not a benchmark the paper measured" in html             # never beside ours
    assert "np.int64" not in html and "<video src='pipeline/generate/000.mp4'" in html
    gen = s["pipeline"]["generate"]                 # real and generated for the same prompts, worded as the captions
    assert all(g["real_mp4"] == f"generate/{i:03d}_real.mp4" and g["real_word_share"] > 0.3 for i, g in enumerate(gen))
    assert gen[0]["prompt"].startswith("a red digit 3 moves") and "real: &#x27;" in html.replace("real: '", "real: &#x27;")
    tasks = {r["task"]: r["metrics"] for r in s["pipeline"]["evaluate"]}
    assert tasks["zero-shot color"]["top1"] > 90 and tasks["retrieval"]["t2v_R@1"] > 50
    tiny = {r["split"]: r for r in s["viclip_tiny"]}
    assert tiny["val"]["t2v_R@1"] >= 75 and tiny["test"]["clips"] == 48  # percent, the pipeline's protocol


def test_report_escapes_captions_and_paths(tmp_path):
    evil = "<script>alert(1)</script> & 'x'"
    write_report(tmp_path, [{"title": evil, "text": evil, "tables": [pd.DataFrame({"caption": [evil]})],
                             "figures": [{"src": "a'><script>.png", "caption": evil}]}])
    html = (tmp_path / "index.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_main_job_stops_with_exit_4_naming_a_damaged_or_missing_world_file(tmp_path, capsys):
    from internvid_nb.demo import main
    from internvid_nb.world.sampleworld import sample_world_dir
    broken = tmp_path / "world"
    shutil.copytree(sample_world_dir(), broken)
    (broken / "raw" / "raw_01.mp4").unlink()
    (broken / "clips" / "val_0003.mp4").write_bytes(b"\x00" * 100)
    (broken / "clips.parquet").unlink()                                        # not regenerated over the damaged world
    assert main(["--out", str(tmp_path / "out"), "--world", str(broken)]) == 4
    err = capsys.readouterr().err
    assert "raw/raw_01.mp4: missing" in err and "clips.parquet: missing" in err and "clips/val_0003.mp4: content differs from MANIFEST.json" in err and "make data" in err
    assert not (tmp_path / "out").exists() and not (broken / "clips.parquet").exists()      # nothing ran, nothing rewritten
