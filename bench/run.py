"""`make bench`: benchmarks measured side by side in one run; prints JSON and writes it to --out."""
import argparse, json, platform, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch

from internvid_nb.data.videoio import read_samplings, read_frames, middle, at_fps, segments
from internvid_nb.world.sampleworld import load_world, real_clips

SAMPLINGS = {"coarse": middle(), "fine": at_fps(1.0), "viclip": segments(8, "start")}


def _time(fn, repeats):
    "Best-of-`repeats` wall time of fn() (the minimum is the least disturbed run)."
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t)
    return best


def bench_decode_once(paths, repeats=3):
    "Decode-once of three samplings per clip against one open+decode per sampling, same clips, same run."
    n_frames = sum(sum(len(v) for v in read_samplings(p, SAMPLINGS).values()) for p in paths)
    once = _time(lambda: [read_samplings(p, SAMPLINGS) for p in paths], repeats)
    separate = _time(lambda: [read_frames(p, s) for p in paths for s in SAMPLINGS.values()], repeats)
    return {"clips": len(paths), "frames_served": n_frames,
            "decode_once_frames_per_s": round(n_frames / once, 1), "per_sampling_frames_per_s": round(n_frames / separate, 1),
            "ratio_once_vs_per_sampling": round(separate / once, 2), "goal_ratio": 2.0}


def bench_viclip_train(configs=(("tiny", 16), ("B/16", 2)), steps=2):
    "Training-step clips/s of each config, masked 0.9 vs unmasked, each in its own process (peak memory is its own)."
    import subprocess
    out = {}
    for name, batch in configs:
        runs = {}
        for masking in (0.9, 0.0):
            r = subprocess.run([sys.executable, str(Path(__file__).parent / "train_step.py"), "--config", name, "--masking", str(masking),
                                "--batch", str(batch), "--steps", str(steps)], capture_output=True, text=True, check=True)
            runs[f"masking_{masking}"] = json.loads(r.stdout.strip().splitlines()[-1])
        runs["ratio_masked_vs_unmasked"] = round(runs["masking_0.9"]["clips_per_s"] / runs["masking_0.0"]["clips_per_s"], 2)
        out[name] = runs
    out["goal_ratio_B/16"] = 3.0
    out["gpu"] = "bench/gpu_viclip.py reports L/14 clips/s and MFU on a CUDA machine (not run by make bench on CPU)"
    return out


def bench_segmentation(paths, repeats=3):
    "Shot detection frames/s: decode once downscaled with decord + ContentDetector, against PySceneDetect's detect()."
    from scenedetect import detect, ContentDetector
    from internvid_nb.curation.segment import segment_video, SegmentConfig
    from internvid_nb.data.videoio import probe
    n = sum(probe(p).n_frames for p in paths)
    ours = _time(lambda: [segment_video(p, config=SegmentConfig(min_scene_len=8)) for p in paths], repeats)
    theirs = _time(lambda: [detect(str(p), ContentDetector(threshold=27, min_scene_len=8)) for p in paths], repeats)
    return {"videos": len(paths), "frames": n, "ours_frames_per_s": round(n / ours, 1), "pyscenedetect_detect_frames_per_s": round(n / theirs, 1),
            "ratio_ours_vs_detect": round(theirs / ours, 2), "goal_ratio": 1.5}


def bench_curation(clips, repeats=2):
    """Clips/s of each curation stage on the same clips, and the decode-once caption+score stage against one decode
    per stage (caption_stage then score_stage), measured side by side."""
    from internvid_nb.curation.curate import CurateConfig, build_models, curate_stage, CURATE_SAMPLINGS
    from internvid_nb.curation.caption import caption_stage
    from internvid_nb.curation.filter import score_stage
    m = build_models(CurateConfig(device="cpu"))
    batch = clips[["clip_id", "path", "start", "end", "caption"]].reset_index(drop=True)
    chunks = [batch.iloc[s:s + 16].reset_index(drop=True) for s in range(0, len(batch), 16)]
    n = len(batch)
    decode = _time(lambda: [read_samplings(p, CURATE_SAMPLINGS) for p in batch.path], repeats)
    cap = _time(lambda: [caption_stage(c, m.captioner, m.summarizer) for c in chunks], repeats)
    score = _time(lambda: [score_stage(c, m.scorer, "caption", m.aesthetic) for c in chunks], repeats)
    once = _time(lambda: [curate_stage(c, m) for c in chunks], repeats)
    return {"clips": n, "decode_only_clips_per_s": round(n / decode, 1), "caption_stage_clips_per_s": round(n / cap, 1),
            "score_stage_clips_per_s": round(n / score, 1), "per_stage_decode_clips_per_s": round(n / (cap + score), 1),
            "decode_once_clips_per_s": round(n / once, 1), "ratio_once_vs_per_stage": round((cap + score) / once, 2),
            "models": {"caption": m.captioner.name, "summary": m.summarizer.name, "sim": m.scorer.name, "aesthetic": m.aesthetic.name}}


def bench_chain(w):
    "The whole chain on the sample world's raw videos: clips/s of every stage, from run_curation's own timing."
    import tempfile
    from internvid_nb.curation.curate import CurateConfig, run_curation
    from internvid_nb.curation.segment import SegmentConfig
    with tempfile.TemporaryDirectory() as d:
        s = run_curation(w.raw[["video_id", "path"]], d, CurateConfig(segment=SegmentConfig(min_scene_len=8), device="cpu"),
                         progress=False, log=lambda *a: None)
    return {k: s[k] for k in ("videos", "clips_found", "clips_kept", "subsets", "seconds", "clips_per_s")}


def bench_engines(w, copies=6, repeats=1):
    """The end-to-end pipeline (`internvid pipeline --stages curate`) on the sample world's raw videos, run as a user runs
    it (a fresh process each time), on the local runner with 1 and 2 workers and on a Ray started locally with 2 CPUs.
    The 6 raw videos are listed `copies` times under new ids (the same files), so the chain has enough batches to
    spread. Wall seconds include start-up (Ray's own start is about 10 s); stage seconds are the curate stage alone."""
    import subprocess, tempfile
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        raw = w.raw[["video_id", "path"]]
        pd.concat([raw.assign(video_id=raw.video_id + f"_c{k}") for k in range(copies)], ignore_index=True).to_parquet(d/"videos.parquet")
        (d/"p.toml").write_text('videos = "videos.parquet"\nstages = ["curate"]\n[curate.segment]\nmin_scene_len = 8\n')
        for name, extra in [("local_1_worker", ["--workers", "1"]), ("local_2_workers", ["--workers", "2"]),
                            ("ray_local_2_cpus", ["--engine", "ray", "--num-cpus", "2"])]:
            best = None
            for k in range(repeats):
                out = d/f"{name}_{k}"
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "internvid_nb.cli", "pipeline", str(d/"p.toml"), "--out", str(out), "--no-progress", *extra],
                               check=True, capture_output=True)
                wall = time.perf_counter() - t0
                s = json.loads((out/"summary.json").read_text())
                r = {"clips": s["curate"]["clips_kept"], "wall_s": round(wall, 2), "stage_s": s["seconds"]["curate"],
                     "clips_per_s_wall": round(s["curate"]["clips_kept"] / wall, 3), "clips_per_s_stage": round(s["curate"]["clips_kept"] / s["seconds"]["curate"], 3)}
                if best is None or r["wall_s"] < best["wall_s"]: best = r
            rows[name] = best
    base = rows["local_1_worker"]
    rows["ratios"] = {f"{k}_vs_local_1_worker_{m}": round(rows[k][m] / base[m], 3) for k in ("local_2_workers", "ray_local_2_cpus") for m in ("wall_s", "stage_s")}
    rows["ratios"]["ray_vs_local_2_workers_stage_s"] = round(rows["ray_local_2_cpus"]["stage_s"] / rows["local_2_workers"]["stage_s"], 3)
    return rows


def bench_evaluation(sizes=(1000, 5000, 20000), dim=512):
    """Video encoding clips/s of viclip-tiny and ViCLIP-B/16 (random weights) on CPU, and the time of a full retrieval
    evaluation (t2v and v2t ranks, R@k, MdR, MnR) on synthetic embeddings as the number of clips grows."""
    from internvid_nb.models.viclip import ViCLIP
    from internvid_nb.evaluation.video_text import retrieval
    out = {"encode": {}, "retrieval_seconds": {}}
    for name, batch in (("tiny", 16), ("B/16", 2)):
        m = ViCLIP.from_pretrained("viclip-tiny").float() if name == "tiny" else ViCLIP(name)
        m.eval(); v = m.config.vision
        x = torch.randn(batch, v.num_frames, 3, v.input_resolution, v.input_resolution)
        with torch.no_grad():
            m.get_vid_features(x)
            t = _time(lambda: m.get_vid_features(x), 2)
        out["encode"][name] = {"clips_per_s": round(batch / t, 2), "batch": batch}
    g = torch.Generator().manual_seed(0)
    for n in sizes:
        v = torch.randn(n, dim, generator=g); t = v + 0.5 * torch.randn(n, dim, generator=g)
        out["retrieval_seconds"][n] = round(_time(lambda: retrieval(v, t), 1), 3)
    a, b = sizes[0], sizes[-1]
    out["retrieval_growth"] = {"clips_ratio": b / a, "time_ratio": round(out["retrieval_seconds"][b] / out["retrieval_seconds"][a], 1),
                               "note": "similarity matrix and ranks are O(N^2): time grows with the square of the clips"}
    return out


def bench_generation(steps=(10, 25, 50), n=8, n_metric=100):
    """Text-to-video sampling seconds per video (t2v-tiny, CPU, classifier-free guidance, batch of n) by number of
    DDIM steps, and the time of all four metrics with bootstrap intervals for 100 generated vs 100 real videos."""
    from internvid_nb.models.t2v import TextToVideo
    from internvid_nb.evaluation.generation_metrics import GenerationMetrics
    from internvid_nb.world.generation import DigitFeatures
    try: pipe = TextToVideo.from_pretrained("t2v-tiny")
    except FileNotFoundError: pipe = TextToVideo("tiny")
    prompts = [f"a red digit {i % 10} moves from left to right on a black background" for i in range(n)]
    out = {"sampling_seconds_per_video": {}}
    pipe(prompts[:2], steps=2)
    for k in steps:
        out["sampling_seconds_per_video"][k] = round(_time(lambda: pipe(prompts, steps=k), 1) / n, 3)
    rng = np.random.default_rng(0)
    real = [rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8) for _ in range(n_metric)]
    fake = [rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8) for _ in range(n_metric)]
    m = GenerationMetrics(DigitFeatures(), rounds=200)
    out["metrics_seconds_per_100_videos"] = round(_time(lambda: m.compare(real, fake, prompts * (n_metric // n) + prompts[:n_metric % n]), 1) * 100 / n_metric, 2)
    out["note"] = "FID, FVD, IS and CLIPSIM with 200 bootstrap rounds each; feature extraction is done once per set"
    return out


def bench_corpus(sizes=(10_000, 100_000), lang_rows=2000):
    """Corpus statistics on synthetic clip tables: summary (durations, caption lengths) and word kinds, at 10k and 100k
    rows; language identification (lingua) per 1000 captions, measured on `lang_rows`."""
    from internvid_nb.curation.corpus import corpus_summary, word_kinds, detect_language
    from internvid_nb.ui.corpus_plots import flt_threshold
    rng = np.random.default_rng(0)
    vocab = "a an the man woman dog cat red blue small large walks runs plays kitchen street park beach car ball on in with".split()
    out = {}
    for n in sizes:
        start = rng.uniform(0, 300, n)
        t = pd.DataFrame({"video_id": rng.integers(0, n // 30, n).astype(str), "start": start, "end": start + rng.gamma(2, 6, n),
                          "caption": [" ".join(rng.choice(vocab, rng.integers(6, 25))) for _ in range(n)],
                          "sim_score": rng.normal(0.35, 0.04, n), "aes_score": rng.normal(4.9, 0.7, n)})
        out[n] = {"summary_s": round(_time(lambda: corpus_summary(t), 1), 3), "word_kinds_s": round(_time(lambda: word_kinds(t.caption), 1), 3),
                  "flt_threshold_s": round(_time(lambda: flt_threshold(t), 1), 4)}
    caps = [" ".join(rng.choice(vocab, 12)) for _ in range(lang_rows)]
    detect_language(caps[:10])
    out["language_s_per_1000"] = round(_time(lambda: detect_language(caps), 1) * 1000 / lang_rows, 3)
    return out


SECTIONS = ("video_io", "segmentation", "curation", "evaluation", "generation", "corpus", "viclip_train_cpu", "real_footage", "loader", "explore")


def main(argv=None):
    sys.path.insert(0, str(Path(__file__).parent))
    import real_footage, loader, explore
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench/results/bench.json")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), metavar="SECTION",
                    help=f"run only these sections ({', '.join(SECTIONS)}), replacing them in --out and keeping the others; default: all")
    real_footage.add_args(ap)
    loader.add_args(ap)
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    w = load_world()
    sections = {
        "video_io": lambda: {"sample_world_clips": bench_decode_once(list(w.clips.path), a.repeats),
                             "real_clips": bench_decode_once(list(real_clips().path), a.repeats)},
        "segmentation": lambda: {"sample_world_raw": bench_segmentation(list(w.raw.path)),
                                 "real_clips": bench_segmentation(list(real_clips().path))},
        "curation": lambda: {"sample_world_test_clips": bench_curation(w.clips[w.clips.split == "test"], a.repeats),
                             "chain_on_raw_videos": bench_chain(w), "engines": bench_engines(w)},
        "evaluation": bench_evaluation,
        "generation": bench_generation,
        "corpus": bench_corpus,
        "viclip_train_cpu": bench_viclip_train,
        "real_footage": lambda: real_footage.bench_real_footage(a.footage_dir, a.footage_build, min(a.repeats, 2),
                                                                 not a.no_captions, a.memory_cap_gib),
        "loader": lambda: loader.bench_loader(a.loader_dir, min(a.repeats, 2), a.memory_cap_gib),
        "explore": explore.bench_explore,
    }
    res = {"machine": {"python": platform.python_version(), "cpu_count": __import__("os").cpu_count(), "torch": torch.__version__}}
    seconds = {}
    for name in SECTIONS:
        if name in a.only:
            t = time.perf_counter(); res[name] = sections[name](); seconds[name] = round(time.perf_counter() - t, 1)
    res["seconds"] = seconds
    if set(a.only) != set(SECTIONS) and Path(a.out).exists():  # a partial run updates its sections of the last results
        old = json.loads(Path(a.out).read_text())
        res = {**old, **res, "seconds": {**old.get("seconds", {}), **seconds}}
    from internvid_nb.data.core import atomic_write
    with atomic_write(a.out, "w") as f: f.write(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    sys.exit(main())
