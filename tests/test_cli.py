"""The `internvid` command: help, exit codes, the pipeline killed with -9 and rerun, the run lock, Ray, torchrun."""
import json, os, random, re, signal, socket, subprocess, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from internvid_nb.cli import main, build_parser
from internvid_nb.pipeline.commands import EXIT_INPUT, EXIT_LOCKED
from internvid_nb.data.core import repo_root
from internvid_nb.data.schema import read_parquet

CLI = [sys.executable, "-m", "internvid_nb.cli"]
SUBCOMMANDS = ("segment", "caption", "score", "select", "export", "evaluate", "generate", "pipeline")


def _config(tmp_path, world, n_videos=3, batch_size=4, **engine) -> Path:
    "A small pipeline config: the first raw videos, small batches of clips, two short generations."
    world.raw[["video_id", "path"]].head(n_videos).to_parquet(tmp_path / "videos.parquet")
    eng = "".join(f"{k} = {json.dumps(v)}\n" for k, v in engine.items())
    (tmp_path / "p.toml").write_text(f"""videos = "videos.parquet"
out = "run"
stages = ["curate", "generate", "report"]
[engine]
{eng}[curate]
batch_size = {batch_size}
[curate.segment]
min_scene_len = 8
[generate]
steps = 4
prompts = ["a red digit 3 moves from right to left on a black background", "a blue digit 7 moves from bottom to top on a gray background"]
""")
    return tmp_path / "p.toml"


def _pipeline(cfg, out, *extra, timeout=600, **kw):
    return subprocess.run([*CLI, "pipeline", str(cfg), "--out", str(out), "--no-progress", *extra], capture_output=True, text=True, timeout=timeout, **kw)


def _outputs(out: Path) -> dict:
    "Everything a finished run leaves that must not depend on kills: tables, subsets, jsonl, shards, generations."
    cur = out / "curation"
    return {"clips": read_parquet(cur / "clips.parquet"), **{f"subset_{p.stem}": read_parquet(p) for p in sorted((cur / "subsets").glob("*.parquet"))},
            "jsonl": (cur / "internvid.jsonl").read_text(), "shards": [p.read_bytes() for p in sorted((cur / "shards").glob("*.tar"))],
            "generate": json.loads((out / "generate" / "done.json").read_text()),
            "gifs": [p.read_bytes() for p in sorted((out / "generate").glob("*.gif"))]}


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], pd.DataFrame):
            x, y = a[k].drop(columns=["path"], errors="ignore"), b[k].drop(columns=["path"], errors="ignore")
            pd.testing.assert_frame_equal(x, y, obj=k)
        else: assert a[k] == b[k], k


def test_help_explains_every_subcommand(capsys):
    for cmd in SUBCOMMANDS:
        with pytest.raises(SystemExit) as e: build_parser().parse_args([cmd, "--help"])
        assert e.value.code == 0
        text = capsys.readouterr().out
        assert "--out" in text and "(default" in text or cmd == "pipeline", cmd
    with pytest.raises(SystemExit) as e: build_parser().parse_args(["dance"])
    assert e.value.code == 2


def test_missing_input_and_bad_config_exit_4_naming_the_cause(tmp_path, capsys):
    assert main(["caption", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "o")]) == EXIT_INPUT
    assert "nope.parquet: no such table" in capsys.readouterr().err
    (tmp_path / "bad.toml").write_text('videos = "v.parquet"\n[engine]\nkindd = "ray"\n')
    assert main(["pipeline", str(tmp_path / "bad.toml")]) == EXIT_INPUT
    assert "unknown setting(s) in [engine]: ['kindd']" in capsys.readouterr().err
    (tmp_path / "bad2.toml").write_text('videos = "v.parquet"\n[engine]\nworkers = "2"\n')
    assert main(["pipeline", str(tmp_path / "bad2.toml")]) == EXIT_INPUT
    assert "[engine] workers = '2': expected int" in capsys.readouterr().err
    assert main(["evaluate", "--model", "no-such-model", "--out", str(tmp_path / "e")]) == EXIT_INPUT
    assert "no-such-model: no such file or folder" in capsys.readouterr().err
    # a model that cannot load in a worker process exits 4 and names it, as in-process
    world_raw = repo_root() / "data_samples" / "sample_world" / "raw_videos.parquet"
    assert main(["segment", str(world_raw), "--out", str(tmp_path / "seg"), "--min-scene-len", "8", "--no-progress"]) == 0
    clips = tmp_path / "seg" / "clips.parquet"
    assert main(["caption", str(clips), "--captioner", "no-such-captioner", "--workers", "2", "--out", str(tmp_path / "cap"), "--no-progress"]) == EXIT_INPUT
    assert "no-such-captioner" in capsys.readouterr().err


def test_kill_9_at_several_points_then_rerun_gives_identical_outputs_and_the_lock_refuses_a_second_run(tmp_path, world):
    cfg = _config(tmp_path, world, batch_size=2)                              # 2 clips per batch: several batches to be killed among
    r = _pipeline(cfg, tmp_path / "whole")
    assert r.returncode == 0, r.stderr[-3000:]
    whole = _outputs(tmp_path / "whole")
    n = len(whole["clips"])
    assert n > 8 and whole["clips"].clip_id.is_unique and (tmp_path / "whole" / "index.html").exists()
    rng = random.Random(7)
    # kill points: while segmenting, while captioning (after 1 and 3 of the clip batches), while generating, and
    # wherever the run is after a second run on the same folder was refused
    points = [("curation/segments", 1), ("curation/curate", 1), ("curation/curate", 3), ("curation", 1), ("curation/segments", 1)]
    for k, (folder, parts) in enumerate(points):
        out = tmp_path / f"killed{k}"
        p = subprocess.Popen([*CLI, "pipeline", str(cfg), "--out", str(out), "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pattern = "summary.json" if folder == "curation" else "part-*.parquet"       # curation/summary.json: curation done, generation next
        deadline = time.time() + 300
        while len(list((out / folder).glob(pattern))) < parts and time.time() < deadline and p.poll() is None: time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.1))                                           # a random moment after the point
        if k == 4:                                                                # a second run on the same folder is refused, not interleaved
            second = _pipeline(cfg, out)                                          # (it takes seconds, so this kill lands anywhere later)
            assert second.returncode == EXIT_LOCKED and "is in use by another run (pid" in second.stderr, second.stderr[-2000:]
            if p.poll() is not None: continue                                     # the first run finished meanwhile: nothing to kill
        assert p.poll() is None, f"the run ended before kill point {k}"
        os.kill(p.pid, signal.SIGKILL); p.wait()
        # where the kill landed: the stage of the kill point was not finished
        curate_parts = len(list((out / "curation" / "curate").glob("part-*.parquet")))
        if k == 0: assert curate_parts == 0, curate_parts
        if k in (1, 2): assert not (out / "curation" / "clips.parquet").exists()
        assert not (out / "generate" / "done.json").exists()
        r = _pipeline(cfg, out)                                                   # the lock died with the killed process
        assert r.returncode == 0, r.stderr[-3000:]
        _same(_outputs(out), whole)
        assert not list(out.rglob(".*.tmp"))                                      # temp files of a cut write are cleaned


@pytest.fixture
def ray_cluster(tmp_path):
    "A local Ray cluster with 2 CPUs, started by `ray start` like a user would, stopped after the test."
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    ray = Path(sys.executable).parent / "ray"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    r = subprocess.run([str(ray), "start", "--head", "--num-cpus=2", f"--port={port}", "--include-dashboard=false",
                        "--object-store-memory=300000000", "--disable-usage-stats"], check=True, capture_output=True, text=True, env=env, timeout=180)
    ip = re.search(r"Local node IP: (\S+)", r.stdout + r.stderr).group(1)       # the head listens on the node's address
    try: yield f"{ip}:{port}"
    finally: subprocess.run([str(ray), "stop", "--force"], capture_output=True, timeout=120)


def test_pipeline_on_a_local_ray_cluster_gives_the_same_outputs_as_the_local_runner(tmp_path, world, ray_cluster):
    cfg = _config(tmp_path, world)
    t0 = time.monotonic()
    local = _pipeline(cfg, tmp_path / "local", "--stages", "curate")
    assert local.returncode == 0, local.stderr[-3000:]
    # Ray's head, raylet and workers are more processes on the same cores: the whole test takes about 76 s alone, but
    # with 5 busy processes beside it the Ray run alone passed 600 s (a fresh-clone proof), so its limit follows the local run's
    ray_limit = max(600, 12 * (time.monotonic() - t0))
    # `ray start` enabled token auth by default in Ray 2.5x (token in ~/.ray/auth_token) and disables it from 2.60:
    # the client follows what the cluster did, as a user's would
    token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    env = {**os.environ, "RAY_AUTH_MODE": "token"} if token.exists() else dict(os.environ)
    r = _pipeline(cfg, tmp_path / "ray", "--stages", "curate", "--engine", "ray", "--ray-address", ray_cluster, env=env,
                  timeout=ray_limit)
    assert r.returncode == 0, r.stderr[-3000:]
    summ = json.loads((tmp_path / "ray" / "curation" / "summary.json").read_text())
    assert summ["engine"] == "ray"
    a, b = (read_parquet(tmp_path / d / "curation" / "clips.parquet") for d in ("local", "ray"))
    assert len(a) > 8 and a.clip_id.tolist() == b.clip_id.tolist()
    for col in ("video_id", "start", "end", "caption_coarse", "caption_summary", "status", "dup_of"): assert a[col].tolist() == b[col].tolist(), col
    for col in ("sim_score", "aes_score", "sampled_motion"): np.testing.assert_allclose(a[col], b[col], atol=1e-5, err_msg=col)
    np.testing.assert_allclose(np.stack(a.video_emb), np.stack(b.video_emb), atol=1e-5)
    for s in ("flt", "aes", "div", "random"):
        assert (read_parquet(tmp_path / "local" / "curation" / "subsets" / f"{s}.parquet").clip_id.tolist()
                == read_parquet(tmp_path / "ray" / "curation" / "subsets" / f"{s}.parquet").clip_id.tolist()), s


def test_a_local_ray_engine_starts_its_own_instance_beside_a_running_cluster(ray_cluster):
    # a plain ray.init() joins the machine's running cluster and then refuses num_cpus (CI failed so on the retry
    # after a raylet startup timeout, whose half-started GCS had registered itself as the machine's cluster)
    code = ("from internvid_nb.scale.ray_engine import RayEngine\n"
            "ray = RayEngine(num_cpus=1, object_store_mb=100).connect()\n"
            "print('gcs', ray.get_runtime_context().gcs_address, ray.cluster_resources()['CPU'])\n"
            "ray.shutdown()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    assert r.returncode == 0, r.stderr[-3000:]
    _, gcs, cpus = r.stdout.strip().splitlines()[-1].split()
    assert gcs != ray_cluster and float(cpus) == 1.0            # its own instance, not the 2-CPU cluster


def test_local_runner_with_two_workers_gives_the_same_table(tmp_path, world):
    cfg = _config(tmp_path, world, workers=2)
    one = _pipeline(cfg, tmp_path / "one", "--stages", "curate", "--workers", "1")
    two = _pipeline(cfg, tmp_path / "two", "--stages", "curate")
    assert one.returncode == 0 and two.returncode == 0, (one.stderr + two.stderr)[-3000:]
    a, b = (read_parquet(tmp_path / d / "curation" / "clips.parquet") for d in ("one", "two"))
    assert a.clip_id.tolist() == b.clip_id.tolist() and a.caption_summary.tolist() == b.caption_summary.tolist()
    np.testing.assert_allclose(a.sim_score, b.sim_score, atol=1e-5)


def test_train_subcommand_under_torchrun_with_two_processes(tmp_path, world):
    world.clips[world.clips.split == "train"].head(16).to_parquet(tmp_path / "clips.parquet")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "internvid_nb.cli", "train",
                        "--clips", str(tmp_path / "clips.parquet"), "--init", "viclip-tiny", "--out", str(tmp_path / "run"),
                        "--batch-size", "8", "--epochs", "1", "--unmasked-epochs", "0", "--max-steps", "2"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "run" / "final").is_dir() and (tmp_path / "run" / "last.pt").exists()


def test_training_from_shards_under_torchrun_resumes_with_the_same_loss_curve(tmp_path, world):
    # two gloo processes stream the shards export wrote (one loader worker each); a run stopped after 3 steps and
    # resumed logs exactly the losses of a run that did not stop: the stream continued where it was
    from internvid_nb.data.shards import write_shards
    from internvid_nb.models.checkpoint import load_torch_file
    write_shards(world.clips[world.clips.split == "train"].head(48), tmp_path / "shards", shard_size=12)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    def run(out, steps):
        r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "internvid_nb.cli",
                            "train", "--shards", str(tmp_path / "shards/shard-{000000..000003}.tar"), "--init", "viclip-tiny",
                            "--out", str(tmp_path / out), "--batch-size", "8", "--epochs", "1", "--unmasked-epochs", "0",
                            "--max-steps", str(steps), "--log-every", "1", "--workers", "1"], capture_output=True, text=True, timeout=900, env=env)
        assert r.returncode == 0, r.stderr[-3000:]
        saved = load_torch_file(tmp_path / out / "last.pt", "cpu")
        return [x["loss"] for x in json.loads(saved["history"])], json.loads(saved["data"]["ranks"])
    whole, _ = run("whole", 6)
    run("resumed", 3)
    again, ranks = run("resumed", 6)
    assert len(whole) == 6 and again == whole
    assert [r["batches"] for r in ranks] == [6, 6]            # each rank took one batch of 4 per step


def test_pipeline_with_no_video_segmented_exits_1_naming_each_video(tmp_path, capsys):
    pd.DataFrame({"video_id": ["v1", "v2"], "path": ["v1.mp4", "v2.mp4"]}).to_csv(tmp_path / "videos.csv", index=False)   # files that do not exist
    (tmp_path / "p.toml").write_text('videos = "videos.csv"\nout = "run"\nstages = ["curate"]\n')
    assert main(["pipeline", str(tmp_path / "p.toml"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "failed: video v1:" in err and "failed: video v2:" in err and "Traceback" not in err
    assert len(read_parquet(tmp_path / "run" / "curation" / "clips.parquet")) == 0


def test_bad_inputs_of_export_select_evaluate_and_duplicate_ids_exit_4_naming_the_cause(tmp_path, world, capsys):
    clips = world.clips[world.clips.split == "test"].head(3)
    clips[["clip_id", "path", "caption"]].to_csv(tmp_path / "c.csv", index=False)
    assert main(["export", str(tmp_path / "c.csv"), "--out", str(tmp_path / "e")]) == EXIT_INPUT
    assert "missing column(s) ['video_id', 'start', 'end']" in capsys.readouterr().err
    bad = clips[["clip_id", "video_id", "path", "caption", "start", "end"]].assign(start=[0.0, "x", 0.0])   # a start that is no number
    bad.to_json(tmp_path / "bad.jsonl", orient="records", lines=True)
    assert main(["export", str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "e2")]) == EXIT_INPUT     # the table is checked on read
    err = capsys.readouterr().err
    assert f"column 'start', row 1 (clip_id '{clips.clip_id.iloc[1]}'): expected a number (seconds), got 'x'" in err and "Traceback" not in err
    assert not (tmp_path / "e2").exists()
    bad.assign(start=[0.0, 9.0, 0.0]).to_json(tmp_path / "late.jsonl", orient="records", lines=True)    # a row that cannot export
    assert main(["export", str(tmp_path / "late.jsonl"), "--out", str(tmp_path / "e3")]) == 1
    assert f"failed: {clips.clip_id.iloc[1]}: end" in capsys.readouterr().err
    assert len((tmp_path / "e3" / "internvid.jsonl").read_text().splitlines()) == 2
    clips.assign(status="error").to_parquet(tmp_path / "s.parquet")
    assert main(["select", str(tmp_path / "s.parquet"), "--subset", "random", "--out", str(tmp_path / "sel")]) == EXIT_INPUT
    assert "no clip with status ok" in capsys.readouterr().err
    assert main(["evaluate", "--split", "tset", "--out", str(tmp_path / "ev")]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "split 'tset'" in err and "'test'" in err and "Traceback" not in err
    pd.DataFrame({"video_id": ["b", "a", "b", "a"], "path": ["/x/b1.mp4", "/x/a1.mp4", "/x/b2.mp4", "/x/a2.mp4"]}).to_csv(tmp_path / "v.csv", index=False)
    assert main(["segment", str(tmp_path / "v.csv"), "--out", str(tmp_path / "seg"), "--no-progress"]) == EXIT_INPUT
    assert "e.g. 'b': ['/x/b1.mp4', '/x/b2.mp4']" in capsys.readouterr().err


def test_train_stage_with_changed_settings_starts_a_fresh_run_and_resumes_with_the_same(tmp_path, world):
    import torch
    from internvid_nb.pipeline.config import PipelineConfig, TrainStageConfig
    from internvid_nb.pipeline.run import train_stage
    quiet = lambda *a: None
    for out in (tmp_path / "a", tmp_path / "b"):
        (out / "curation" / "subsets").mkdir(parents=True)
        world.clips[world.clips.split == "train"].head(4)[["clip_id", "path", "caption"]].to_parquet(out / "curation" / "subsets" / "flt.parquet")
    old, new = (PipelineConfig(train=TrainStageConfig(steps=2, batch_size=2, lr=lr)) for lr in (1e-5, 1e-3))
    first = train_stage(old, tmp_path / "a", quiet)
    changed = train_stage(new, tmp_path / "a", quiet)                         # the old run had reached its end
    fresh = train_stage(new, tmp_path / "b", quiet)
    same = lambda r: {**r, "last": {k: v for k, v in r["last"].items() if k != "clips_per_s"}}    # all but the timing
    assert changed["last"]["lr"] != first["last"]["lr"] and same(changed) == same(fresh)
    w = lambda out: torch.load(out / "train" / "run" / "last.pt", weights_only=True)["model"]
    for k, v in w(tmp_path / "b").items(): assert torch.equal(v, w(tmp_path / "a")[k]), k
    ckpt = tmp_path / "a" / "train" / "run" / "last.pt"
    mtime = ckpt.stat().st_mtime_ns
    assert same(train_stage(new, tmp_path / "a", quiet)) == same(fresh) and ckpt.stat().st_mtime_ns == mtime   # same settings: resumed, nothing redone
