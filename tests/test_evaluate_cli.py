"""`internvid evaluate` on standard benchmarks (tiny copies in their official formats) and on a user's clip table."""
import json
from pathlib import Path
import pytest
from internvid_nb.cli import main
from internvid_nb.pipeline.commands import EXIT_INPUT, EXIT_ITEMS_FAILED, EXIT_OK
from internvid_nb.data.schema import write_internvid_jsonl
from internvid_nb.world.benchmark_copies import write_benchmark_copy


@pytest.fixture(scope="module")
def test_clips(world):
    return world.clips[(world.clips.split == "test") & (world.clips.defect == "")].reset_index(drop=True)


def _results(out: Path) -> list[dict]:
    return json.loads((out / "evaluate" / "results.json").read_text())


def test_evaluate_a_retrieval_benchmark_from_its_official_files(tmp_path, test_clips, capsys):
    root = write_benchmark_copy("msvd", test_clips.head(20), tmp_path / "msvd")
    assert main(["evaluate", "--benchmark", "msvd", "--root", str(root), "--out", str(tmp_path / "out")]) == EXIT_OK
    (r,) = _results(tmp_path / "out")
    assert (r["data"], r["task"], r["model"]) == ("msvd", "retrieval", "viclip-tiny")
    assert (r["metrics"]["n_videos"], r["metrics"]["n_texts"]) == (20, 40)  # two English captions per video
    assert r["metrics"]["t2v_R@1"] > 3 * 100 / 20  # viclip-tiny finds the world's clips from their captions
    assert r["settings"]["published"] == [] and not r["settings"]["protocol_matches"]
    out = capsys.readouterr().out
    assert "msvd retrieval: t2v_R@1" in out and "%" in out
    assert "not beside published numbers: 20 videos evaluated; the official split has 670" in out


def test_evaluate_zero_shot_with_missing_and_broken_videos_names_them_and_goes_on(tmp_path, test_clips, capsys):
    root = write_benchmark_copy("k400", test_clips.head(12), tmp_path / "k400", missing=2)
    broken = sorted((root / "val").rglob("*.mp4"))[0]
    broken.write_bytes(b"\x00" * 4096)
    rc = main(["evaluate", "--benchmark", "k400", "--root", str(root), "--out", str(tmp_path / "out"), "--batch-size", "4"])
    assert rc == EXIT_ITEMS_FAILED
    (r,) = _results(tmp_path / "out")
    assert r["metrics"]["n"] == 9 and r["settings"]["missing"] == 2 and r["settings"]["n_failed"] == 1
    assert r["settings"]["failed"][0][0] == broken.stem
    err = capsys.readouterr().err
    assert f"failed: {broken.stem}" in err


def test_evaluate_limit_spreads_over_the_split(tmp_path, test_clips):
    root = write_benchmark_copy("ucf101", test_clips.head(20), tmp_path / "ucf")
    assert main(["evaluate", "--benchmark", "ucf101", "--root", str(root), "--limit", "5", "--out", str(tmp_path / "o")]) == EXIT_OK
    (r,) = _results(tmp_path / "o")
    assert r["metrics"]["n"] == 5 and len(r["metrics"]["per_class"]) > 1  # not the first class only
    assert r["metrics"]["num_classes"] == 9  # every class of the list is scored, also those the 5 clips lack


def test_evaluate_the_users_clip_table_retrieval_and_zero_shot(tmp_path, world):
    val = world.clips[world.clips.split == "val"].reset_index(drop=True)
    val[["clip_id", "path", "start", "end", "caption", "background"]].to_parquet(tmp_path / "clips.parquet")
    assert main(["evaluate", "--clips", str(tmp_path / "clips.parquet"), "--labels", "background", "--out", str(tmp_path / "o")]) == EXIT_OK
    ret, zs = _results(tmp_path / "o")
    assert (ret["task"], zs["task"]) == ("retrieval", "zero_shot")
    assert ret["metrics"]["t2v_R@1"] > 3 * 100 / len(val)
    assert zs["metrics"]["top1"] > 2 * 100 / val.background.nunique()  # backgrounds: well above chance (25%)


def test_evaluate_an_internvid_jsonl_with_its_videos_folder(tmp_path, world):
    val = world.clips[world.clips.split == "val"].head(12)
    write_internvid_jsonl(val, tmp_path / "ann.jsonl")  # YoutubeID and timestamps, no path
    out = tmp_path / "o"
    assert main(["evaluate", "--clips", str(tmp_path / "ann.jsonl"), "--videos", str(Path(val.path.iloc[0]).parent), "--out", str(out)]) == EXIT_OK
    (r,) = _results(out)
    assert r["metrics"]["n_videos"] == 12 and r["metrics"]["t2v_R@1"] > 3 * 100 / 12


def test_evaluate_bad_benchmark_inputs_exit_4_naming_the_cause(tmp_path, capsys):
    assert main(["evaluate", "--benchmark", "msrvtt", "--out", str(tmp_path / "o")]) == EXIT_INPUT
    assert "--benchmark needs --root" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", "--benchmark", "msrvtt", "--root", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == EXIT_INPUT
    assert "MSRVTT_JSFUSION_test.csv" in capsys.readouterr().err
    t = tmp_path / "t.csv"
    t.write_text("clip_id,path\na,/nowhere.mp4\n")
    assert main(["evaluate", "--clips", str(t), "--out", str(tmp_path / "o")]) == EXIT_INPUT
    assert "nothing to evaluate" in capsys.readouterr().err


def test_pipeline_evaluates_a_standard_benchmark_and_the_report_says_why_no_published_number_stands_beside(tmp_path, test_clips):
    root = write_benchmark_copy("msrvtt", test_clips.head(12), tmp_path / "msrvtt")
    (tmp_path / "p.toml").write_text(f'out = "run"\nstages = ["evaluate", "report"]\n[evaluate]\nbenchmark = "msrvtt"\nroot = "{root}"\n')
    assert main(["pipeline", str(tmp_path / "p.toml"), "--no-progress"]) == EXIT_OK
    (r,) = _results(tmp_path / "run")
    assert (r["data"], r["metrics"]["n_videos"]) == ("msrvtt", 12)
    html = (tmp_path / "run" / "index.html").read_text()
    assert "none: 12 videos evaluated; the official split has 1000" in html
    assert "42.4" in html  # the paper's numbers are listed for reference, in their own table
