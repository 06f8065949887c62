"""Issue 22 research: train a text-to-video recipe on 2 CPU cores in resumable segments, keeping a snapshot of the
averaged weights at each budget, so that digit accuracy can be plotted against training clips seen.

    python bench/t2v_cpu.py train --recipe cpu --run bench/results/t2v_cpu/cpu --hours 1.9
    python bench/t2v_cpu.py eval --run bench/results/t2v_cpu/cpu          # every snapshot not yet evaluated

Rerunning `train` resumes from the run's last checkpoint (train_t2v's `last.pt`). Snapshots are diffusers folders
(`snap-<step>`, float16) loadable with `TextToVideo.from_pretrained`; `bench/t2v_runs/<run>.json` gathers
the evaluations (committed), `bench/t2v_runs/<run>.log` the training log.
"""
import argparse, json, shutil, time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from internvid_nb.models.t2v import T2V_CONFIGS, TextToVideo, inflate_temporal
from internvid_nb.generation.train import train_t2v
from internvid_nb.world.generation import T2V_CPU_RECIPE

RECORDS = Path(__file__).parent / "t2v_runs"   # the curves and training logs, kept in git

# recipes tried; each a model config and a training config (steps is the schedule's length, not a stop)
RECIPES = {
    # world.generation's CPU recipe: T2V_CONFIGS["tiny-edm"] (the token embeddings in the condition, EDM's
    # preconditioning) with T2V_CPU_RECIPE; its learning rate does not depend on `steps`, so any snapshot is a budget point
    "cpu": (replace(T2V_CONFIGS["tiny-edm"], name="t2v-cpu"), replace(T2V_CPU_RECIPE[0], steps=100_000)),
    # joint image-video training: three steps of 128 single frames before each step of 16 clips (the same pixels per
    # step), so that an image step shows the spatial layers frames of 8x as many clips; meant to start from a "cpu" snapshot (--init)
    "joint": (replace(T2V_CONFIGS["tiny-edm"], name="t2v-cpu-joint"),
              replace(T2V_CPU_RECIPE[0], steps=100_000, warmup=100, image_steps=3)),
    # the shipped t2v-tiny (plain x0, GPU-trained on 346k clips) fine-tuned with the digit words' token embeddings
    # added to its condition (the U-Net's cross-attention takes any number of tokens), joint image-video steps as
    # "joint", and its phase 2's loss weight; start it with --init data_samples/models/t2v-tiny --init-clips 346368
    "ft": (replace(T2V_CONFIGS["tiny"], name="t2v-tiny-ft", text_tokens="final+embeddings"),
           replace(T2V_CPU_RECIPE[0], steps=100_000, lr=2e-4, warmup=100, image_steps=3, snr_gamma=5.0)),
    # "ft" with the condition that "ft"'s probe pointed at: the token embeddings scaled to the final states' norm
    # ("final+words"; "ft"'s were ~50x quieter) and the caption's bag of words added to the timestep embedding
    # (`pooled`: a class embedding read from the text; its projection starts at zero, but the 33 extra cross-attention
    # tokens already change t2v-tiny's prediction by about 18% at step 0), with image steps 1:1 (at 3:1 "ft"'s motion
    # drifted); start it as "ft"
    "ftg": (replace(T2V_CONFIGS["tiny"], name="t2v-tiny-ftg", text_tokens="final+words", pooled=True),
            replace(T2V_CPU_RECIPE[0], steps=100_000, lr=2e-4, warmup=100, image_steps=1, snr_gamma=5.0)),
    # from scratch: the same condition on a U-Net that sees 16x16 cells of 2x2 pixels (not 8x8 of 4x4) with fewer
    # channels, EDM's preconditioning as "cpu", image steps 3:1: does a finer grid draw the strokes?
    "p2g": (replace(T2V_CONFIGS["tiny-edm"], name="t2v-p2g", patch=2, block_out_channels=(32, 64, 96),
                    text_tokens="final+words", pooled=True),
            replace(T2V_CPU_RECIPE[0], steps=100_000, image_steps=3)),
    # an image model (one frame), the premise of issue 22 checked: does a U-Net on 2x2-pixel cells, handed the caption's
    # bag of words as a class embedding, learn to draw the digit from the frames of the same clips (every frame of each
    # clip, its caption as the text), and how fast? Plain x0 prediction: undertrained, it draws smooth shapes, not noise
    "img-p2": (replace(T2V_CONFIGS["tiny"], name="t2i-p2", frames=1, patch=2, block_out_channels=(32, 64, 96),
                       text_tokens="final+words", pooled=True),
               replace(T2V_CPU_RECIPE[0], steps=100_000, batch_size=64)),
    # "img-p2" made for steps, not samples: no attention but the mid block's (3x the frames a second on a CPU), batch
    # 16 (4x the steps for the same frames), and a loss that weighs the low noise levels where the glyph's strokes are
    # decided: x0 with min-SNR weighting (1 + SNR, at most 5); "img-p2"'s plain x0 loss is ruled by the high noise
    # levels, where the best answer is a blob of the right colour
    "img-c": (replace(T2V_CONFIGS["tiny"], name="t2i-c", frames=1, patch=2, block_out_channels=(32, 64, 96),
                      down_block_types=("DownBlock3D",) * 3, up_block_types=("UpBlock3D",) * 3,
                      text_tokens="final+words", pooled=True),
              replace(T2V_CPU_RECIPE[0], steps=100_000, snr_gamma=5.0, ckpt_every=250)),
    # "img-c" with v-prediction (its loss weighs x0's error by 1 + SNR, unclamped: more weight yet on the strokes)
    "img-v": (replace(T2V_CONFIGS["tiny"], name="t2i-v", frames=1, patch=2, block_out_channels=(32, 64, 96),
                      down_block_types=("DownBlock3D",) * 3, up_block_types=("UpBlock3D",) * 3,
                      text_tokens="final+words", pooled=True, prediction_type="v_prediction"),
              replace(T2V_CPU_RECIPE[0], steps=100_000, ckpt_every=250)),
    # "img-c" at 3x the learning rate: at batch 16 on a CPU the run is short of steps, not of frames
    "img-c3": (replace(T2V_CONFIGS["tiny"], name="t2i-c3", frames=1, patch=2, block_out_channels=(32, 64, 96),
                       down_block_types=("DownBlock3D",) * 3, up_block_types=("UpBlock3D",) * 3,
                       text_tokens="final+words", pooled=True),
               replace(T2V_CPU_RECIPE[0], steps=100_000, lr=1.5e-3, snr_gamma=5.0, ckpt_every=250)),
    # image then video (Make-A-Video, AnimateDiff): an "img-c" snapshot (--init) run on 8 frames, its temporal
    # convolutions' side taps starting at zero; video steps of 4 clips teach the temporal layers the motion while
    # image steps of 32 frames (1:1) go on teaching the drawing, at img-c's learning rate (its model is still learning)
    "vid-c": (replace(T2V_CONFIGS["tiny"], name="t2v-c", patch=2, block_out_channels=(32, 64, 96),
                      down_block_types=("DownBlock3D",) * 3, up_block_types=("UpBlock3D",) * 3,
                      text_tokens="final+words", pooled=True),
              replace(T2V_CPU_RECIPE[0], steps=100_000, batch_size=4, warmup=100, image_steps=1,
                      snr_gamma=5.0, ckpt_every=250)),
}


def clips_seen(rec: dict, step: int) -> dict:
    "Clips of the video steps and single frames of the image steps up to `step`, the init's included."
    if "clips_seen" in rec:   # a model graded as it is (t2v-tiny-gpu)
        return {"clips_seen": rec["clips_seen"], "frames_seen": 0}
    tc = rec["train"]
    k = tc.get("image_steps", 0) + 1
    video = step // k
    if rec["model"]["frames"] == 1:   # an image recipe: its "clips" are single frames
        return {"clips_seen": 0, "frames_seen": rec.get("init_frames", 0) + step * tc["batch_size"]}
    return {"clips_seen": rec.get("init_clips", 0) + video * tc["batch_size"],
            "frames_seen": rec.get("init_frames", 0) + (step - video) * tc["batch_size"] * rec["model"]["frames"]}


def snapshots(run: Path, done: dict, only: set | None) -> list:
    "The run's snapshot folders (snap-<step>) not yet in `done`, limited to the steps in `only` when given."
    return [p for p in sorted(run.glob("snap-*"))
            if p.name not in done and (not only or int(p.name.split("-")[1]) in only)]


def train(args):
    from internvid_nb.world.generation import world_aes_set
    torch.set_num_threads(args.threads)
    cfg, tc = RECIPES[args.recipe]
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tc.seed)
    pipe = TextToVideo(cfg)
    init = {}
    old = json.loads((run / "recipe.json").read_text()) if (run / "recipe.json").exists() else {}
    if old.get("init") and (not args.init or str(Path(args.init).resolve()) != old["init"]):
        raise SystemExit(f"{run} started from {old['init']}: rerun it with --init {old['init']}")
    if args.init:   # warm start from another model's weights (a snapshot's are averaged), with a fresh optimizer
        src_dir = Path(args.init).resolve()
        src = TextToVideo.from_pretrained(src_dir)
        missing, unexpected = pipe.unet.load_state_dict({k: v.float() for k, v in src.unet.state_dict().items()}, strict=False)
        if unexpected or any(not k.startswith("time_embedding.cond_proj.") for k in missing):
            raise SystemExit(f"--init {args.init} does not fit recipe {args.recipe!r}: missing {missing}, unexpected {unexpected}")
        with torch.no_grad():   # a pooled condition the init lacks starts at zero: it adds nothing at step 0
            for k in missing:
                pipe.unet.get_parameter(k).zero_()
        if src.config.frames == 1 < cfg.frames:   # an image model goes on as a video model: its temporal convolutions'
            inflate_temporal(pipe.unet)            # untrained side taps start at zero
        init = {"init": str(src_dir)}
        if src_dir.name.startswith("snap-") and (src_dir.parent / "recipe.json").exists():   # a run of this script
            src_rec = json.loads((src_dir.parent / "recipe.json").read_text())
            seen = clips_seen(src_rec, int(src_dir.name.split("-")[1]))
            init |= {"init_recipe": src_rec, "init_clips": seen["clips_seen"], "init_frames": seen["frames_seen"]}
        elif args.init_clips is None:
            raise SystemExit(f"--init {args.init} is not a snapshot of a run of this script: say --init-clips")
        if args.init_clips is not None:
            init["init_clips"] = args.init_clips
        if (src_dir / "training.json").exists() and not (run / "init_training.json").exists():   # its card, for ship
            shutil.copyfile(src_dir / "training.json", run / "init_training.json")
    data = run / "data.npz"
    t0 = time.time()
    if data.exists():
        z = np.load(data, allow_pickle=False)
        caps, vids = list(z["captions"]), z["videos"]
    else:   # the clips as the video recipes see them (8 frames), also for an image recipe
        caps, vids, table = world_aes_set(replace(cfg, frames=T2V_CONFIGS["tiny"].frames), args.n, tc.seed)
        np.savez(data.with_suffix(".tmp.npz"), captions=np.asarray(caps), videos=vids)
        data.with_suffix(".tmp.npz").rename(data)
    if cfg.frames == 1:   # an image recipe: every frame of each clip, with the clip's caption (its "clips" are frames)
        caps, vids = [c for c in caps for _ in range(vids.shape[1])], vids.reshape(-1, 1, *vids.shape[2:])
    print(f"{len(caps)} clips ready in {time.time() - t0:.0f} s", flush=True)
    (run / "data.json").write_text(json.dumps({"clips": len(caps)}))
    (run / "recipe.json").write_text(json.dumps({"model": asdict(cfg), "train": asdict(tc), "n": args.n} | init, indent=1))
    start, stop_at = time.time(), time.time() + args.hours * 3600
    budgets = sorted(int(b) for b in args.budgets.split(","))
    keep_ckpt = {int(b) for b in args.keep_ckpt.split(",") if b}
    log = open(run / "train.log", "a")
    for b in budgets:
        if (run / f"snap-{b:06d}").exists():
            continue
        if time.time() > stop_at:
            break
        hist = train_t2v(pipe, caps, vids, tc, run / "ckpt", max_steps=b, max_seconds=stop_at - time.time(),
                         log=lambda m: (print(m, flush=True), log.write(m + "\n"), log.flush()))
        step = hist[-1]["step"] if hist else 0
        if step < b:   # stopped by the clock: the checkpoint is saved, the next call resumes
            break
        if step != b:
            raise SystemExit(f"the run's checkpoint is at step {step}, past the budget {b}: its snapshot is lost")
        pipe.save_pretrained(run / f"snap-{b:06d}", half=True)   # the EMA weights (train_t2v ends holding them)
        if b in keep_ckpt:   # the full state, for runs that branch off here (claim d)
            shutil.copyfile(run / "ckpt" / "last.pt", run / f"ckpt-{b:06d}.tmp")
            (run / f"ckpt-{b:06d}.tmp").rename(run / f"ckpt-{b:06d}.pt")   # a branch waiting for it reads it whole
        seen = clips_seen(json.loads((run / "recipe.json").read_text()), b)
        print(f"snapshot at step {b} ({seen['clips_seen']} clips, {seen['frames_seen']} frames), {time.time() - start:.0f} s", flush=True)
        pipe = TextToVideo(cfg)   # the next segment resumes from the checkpoint's raw weights, not the EMA's
        # (an --init run's weights come from its checkpoint too, from the first segment's first save on)
    print("done", flush=True)


def branch(args):
    """Claim (d): from a kept checkpoint of the run, train the same recipe for the same steps on every clip of the same
    draw (the Aes subset plus the world's bad clips) instead of the Aes subset; the run's own snapshot at the end step
    is the Aes arm."""
    from internvid_nb.world.generation import world_aes_set
    torch.set_num_threads(args.threads)
    cfg, tc = RECIPES[args.recipe]
    src, out = Path(args.run), Path(args.out)
    start = int(args.start)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data.npz"
    if data.exists():
        z = np.load(data, allow_pickle=False)
        caps, vids = list(z["captions"]), z["videos"]
    else:
        caps, vids, table = world_aes_set(cfg, args.n, tc.seed, threshold=None)
        np.savez(data.with_suffix(".tmp.npz"), captions=np.asarray(caps), videos=vids)
        data.with_suffix(".tmp.npz").rename(data)
    print(f"{len(caps)} clips (all of the draw)", flush=True)
    (out / "recipe.json").write_text(json.dumps({"model": asdict(cfg), "train": asdict(tc), "n": args.n, "subset": "all",
                                                 "branch_of": str(src), "start": start}, indent=1))
    (out / "ckpt").mkdir(parents=True, exist_ok=True)
    while not (src / f"ckpt-{start:06d}.pt").exists():   # the data is ready before the run gets there
        time.sleep(10)
    if not (out / "ckpt" / "last.pt").exists():
        shutil.copyfile(src / f"ckpt-{start:06d}.pt", out / "ckpt" / "last.pt")
    end = start + args.branch_steps
    pipe = TextToVideo(cfg)
    log = open(out / "train.log", "a")
    hist = train_t2v(pipe, caps, vids, tc, out / "ckpt", max_steps=end,
                     log=lambda m: (print(m, flush=True), log.write(m + "\n"), log.flush()))
    if hist and hist[-1]["step"] >= end:
        pipe.save_pretrained(out / f"snap-{end:06d}", half=True)
        print("done", flush=True)


def snap(args):
    """A snapshot (the averaged weights) from a kept checkpoint `ckpt-<step>.pt` of the run, for a budget the training
    process was not told to stop at; waits for the checkpoint."""
    from internvid_nb.models.checkpoint import load_torch_file
    cfg, _ = RECIPES[args.recipe]
    run, step = Path(args.run), int(args.start)
    src = run / f"ckpt-{step:06d}.pt"
    while not src.exists():
        time.sleep(10)
    saved = load_torch_file(src, "cpu")
    assert int(saved["step"]) == step, (src, saved["step"])
    pipe = TextToVideo(cfg)
    pipe.unet.load_state_dict(saved["unet"])
    with torch.no_grad():
        for p, e in zip(pipe.unet.parameters(), saved["ema"]):
            p.copy_(e)
    pipe.save_pretrained(run / f"snap-{step:06d}", half=True)
    print(f"snapshot at step {step} from {src}", flush=True)


def ship(args):
    """Make a snapshot the embedded default: data_samples/models/t2v-tiny (float16), named t2v-tiny, with a training
    card from the run's kept checkpoint at that step (its logged history; seconds estimated from the logged speeds).
    Only with T2V_TINY_RECIPE and T2V_CONFIGS["tiny"] switched to the run's recipe too, so that `make train-t2v`
    still rebuilds the shipped model."""
    from internvid_nb.data.core import atomic_write, data_samples_dir
    from internvid_nb.models.checkpoint import load_torch_file
    run, step = Path(args.run), int(args.start)
    rec = json.loads((run / "recipe.json").read_text())
    hist = json.loads(load_torch_file(run / f"ckpt-{step:06d}.pt", "cpu")["history"])   # saved as JSON
    init_card = run / "init_training.json"   # the init's card as it was when the run started (train --init)
    before = json.loads(init_card.read_text()) if init_card.exists() else None
    pipe = TextToVideo.from_pretrained(run / f"snap-{step:06d}")
    pipe.config.name = "t2v-tiny"
    out = data_samples_dir() / "models" / "t2v-tiny"
    pipe.save_pretrained(out, half=True)
    n = json.loads((run / "data.json").read_text()) if (run / "data.json").exists() else {}
    tc = dict(rec["train"], steps=step)
    phase = {"recipe": tc, "clips": n.get("clips"), "drawn": rec["n"], "device": "cpu: 2 cores, shared with the evaluations and other work",
             "text_tokens": rec["model"].get("text_tokens", "final"),
             "init": rec.get("init"), "init_clips": rec.get("init_clips"), "video_clips": clips_seen(rec, step)["clips_seen"] - rec.get("init_clips", 0),
             "seconds": sum(tc["log_every"] * tc["batch_size"] / h["clips_per_s"] for h in hist), "history": hist}
    card = {"drawn": rec["n"], "aes_clips": n.get("clips"), "device": phase["device"],
            "note": f"bench/t2v_cpu.py recipe {args.recipe!r}, snapshot at step {step}; weights in float16", "phases": [phase]}
    if before:   # a fine-tuned model: the init's phases come first
        card = dict(before, note=f"phases 1-{len(before['phases'])}: {before.get('device')}; the last: " + card["note"],
                    phases=[dict(p, text_tokens=p.get("text_tokens", "final")) for p in before["phases"]] + [phase])
    with atomic_write(out / "training.json", "w") as f:
        json.dump(card, f, indent=1)
    print(f"shipped {run / f'snap-{step:06d}'} as {out}", flush=True)


def evaluate(args):
    from internvid_nb.world.generation import world_generation_report
    from internvid_nb.world.readers import WorldReader
    reader = WorldReader.from_pretrained()
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    curve_p = RECORDS / f"{run.name}.json"   # committed: the weights stay in the ignored run folder
    RECORDS.mkdir(exist_ok=True)
    curve = json.loads(curve_p.read_text()) if curve_p.exists() else {}
    for snap in snapshots(run, curve, args.snaps):
        pipe = TextToVideo.from_pretrained(snap)
        t0 = time.time()
        r = world_generation_report(pipe, n_test=args.n_test, steps=args.steps, guidance=args.guidance, reader=reader,
                                    folder=run.parent / "eval-clips", rounds=args.rounds)
        keep = {k: v for k, v in r.items() if isinstance(v, (int, float, str))}
        keep["rows"] = r["rows"]
        keep["eval_seconds"] = time.time() - t0
        keep["step"] = int(snap.name.split("-")[1])
        rec = json.loads((run / "recipe.json").read_text())
        keep |= clips_seen(rec, keep["step"])
        curve[snap.name] = keep
        print(snap.name, {k: v for k, v in keep.items() if k != "rows"}, flush=True)
        curve_p.write_text(json.dumps(curve, indent=1))
        if (run / "train.log").exists():
            shutil.copyfile(run / "train.log", RECORDS / f"{run.name}.log")


def probe(args):
    """A quick look between snapshots: the digit and motion the world reader reads in videos generated for the first
    `--n-test` held-out one-object prompts of world_eval_clips(120) (the eval's prompts and seeds), and the digit in
    single images (the model run with one frame, as its image steps train it); records in bench/t2v_runs/probes/<run>.json."""
    from dataclasses import replace as dc_replace
    from internvid_nb.world.comparisons import world_eval_clips
    from internvid_nb.world.readers import WorldReader, MOTION_NAMES
    reader = WorldReader.from_pretrained()
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    clips = world_eval_clips(120, run.parent / "eval-clips")
    one = clips[clips.n_objects == 1].reset_index(drop=True).iloc[: args.n_test]
    prompts, y = one.caption_true.tolist(), one.digit.to_numpy()
    ym = np.array([MOTION_NAMES.index(m) for m in one.motion])
    rec_p = RECORDS / "probes" / f"{run.name}.json"   # beside, not among, the graded curves
    rec_p.parent.mkdir(exist_ok=True)
    recs = json.loads(rec_p.read_text()) if rec_p.exists() else {}
    for snap in snapshots(run, recs, args.snaps):
        pipe = TextToVideo.from_pretrained(snap)
        t0 = time.time()
        r = reader.read(pipe(prompts, steps=args.steps, guidance=args.guidance, seed=0))
        img = TextToVideo(dc_replace(pipe.config, frames=1), unet=pipe.unet)
        frames = img(prompts, steps=args.steps, guidance=args.guidance, seed=0)
        ri = reader.read([np.repeat(f, pipe.config.frames, axis=0) for f in frames])
        rec = json.loads((run / "recipe.json").read_text())
        recs[snap.name] = {"step": int(snap.name.split("-")[1]), "prompts": len(prompts), **clips_seen(rec, int(snap.name.split("-")[1])),
                           "video digit accuracy": float((r["digit"] == y).mean() * 100),
                           "video motion accuracy": float((r["motion"] == ym).mean() * 100),
                           # does a video hold one digit? real clips of these prompts: 99.7% of frames read as their
                           # video's digit (trivially 100% for a one-frame model)
                           "frames reading the video's digit, %": float((r["frame_probs"].argmax(-1) == r["digit"][:, None]).mean() * 100),
                           "image digit accuracy": float((ri["digit"] == y).mean() * 100),
                           "digit prior (most common answer), %": float(np.bincount(r["digit"]).max() / len(y) * 100),
                           "seconds": time.time() - t0}
        print(snap.name, recs[snap.name], flush=True)
        rec_p.write_text(json.dumps(recs, indent=1))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["train", "branch", "snap", "ship", "eval", "probe"])
    ap.add_argument("--out", help="branch: the new run's folder")
    ap.add_argument("--start", default="1000", help="branch, snap: the kept checkpoint's step")
    ap.add_argument("--branch-steps", type=int, default=500)
    ap.add_argument("--recipe", default="cpu")
    ap.add_argument("--run", required=True)
    ap.add_argument("--init", help="train: start from this snapshot folder (snap-<step> of another run)")
    ap.add_argument("--init-clips", type=int, help="train --init: clips the init has seen (another model than a snapshot)")
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--hours", type=float, default=1.9)
    ap.add_argument("--budgets", default="250,500,1000,1500,2000,3000,4000,5000,6000,8000")
    ap.add_argument("--keep-ckpt", default="1000,1500,2000")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-test", type=int, default=200)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=50, help="eval: bootstrap rounds of the metric intervals")
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--snaps", type=lambda v: {int(x) for x in v.split(",")}, help="eval, probe: only these steps")
    args = ap.parse_args()
    {"train": train, "branch": branch, "snap": snap, "ship": ship, "eval": evaluate, "probe": probe}[args.what](args)
