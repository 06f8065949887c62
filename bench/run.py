"""`make bench`: benchmarks measured side by side in one run; prints JSON and writes it to --out."""
import argparse, json, platform, sys, time
from pathlib import Path
import numpy as np
import torch

from internvid_nb.videoio import read_samplings, read_frames, middle, at_fps, segments
from internvid_nb.sampleworld import load_world, real_clips

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
    from internvid_nb.segment import segment_video, SegmentConfig
    from internvid_nb.videoio import probe
    n = sum(probe(p).n_frames for p in paths)
    ours = _time(lambda: [segment_video(p, c=SegmentConfig(min_scene_len=8)) for p in paths], repeats)
    theirs = _time(lambda: [detect(str(p), ContentDetector(threshold=27, min_scene_len=8)) for p in paths], repeats)
    return {"videos": len(paths), "frames": n, "ours_frames_per_s": round(n / ours, 1), "pyscenedetect_detect_frames_per_s": round(n / theirs, 1),
            "ratio_ours_vs_detect": round(theirs / ours, 2), "goal_ratio": 1.5}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench/results/bench.json")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    w = load_world()
    res = {"machine": {"python": platform.python_version(), "cpu_count": __import__("os").cpu_count(), "torch": torch.__version__},
           "video_io": {"sample_world_clips": bench_decode_once(list(w.clips.path), a.repeats),
                        "real_clips": bench_decode_once(list(real_clips().path), a.repeats)},
           "segmentation": {"sample_world_raw": bench_segmentation(list(w.raw.path)),
                            "real_clips": bench_segmentation(list(real_clips().path))},
           "viclip_train_cpu": bench_viclip_train()}
    from internvid_nb.core import atomic_write
    with atomic_write(a.out, "w") as f: f.write(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    sys.exit(main())
