"""Issue 22 research: does diffusion in a learned latent space learn the digit faster on a CPU than in pixels?

The pixel-space image models of bench/t2v_cpu.py (img-p2, img-c) learn colours and backgrounds within 50k frames but
still draw scribbles after 100k. Latent diffusion (Rombach et al. 2022, the design of the ModelScope and LaVie models
that InternVid trains) hands the strokes to an autoencoder's decoder, which learns them from a reconstruction loss,
and leaves the diffusion model a small latent (8 x 8 x 8 here against 32 x 32 x 3). The stages, each on its own:

    R=bench/results/t2i_latent_f4z8
    python bench/t2v_latent.py ae    --run $R --ae-down 2 --ae-z 8 --ae-ch 48     # the autoencoder (~5 min alone)
    python bench/t2v_latent.py diff  --run $R --record latent-f4z8 --batch 32 --probe-every 500 --max-steps 3000
    python bench/t2v_latent.py video --run $V --image $R/diff.pt --batch 8 --record latent-video --minutes 90
    python bench/t2v_latent.py video --run $V --motion <other run>/video.pt      # only probe: these motion modules
    python bench/t2v_latent.py guide  --run $G --probe-every 200 --max-steps 5000 # the image guide (~25 min)
    python bench/t2v_latent.py vguide --run $W --probe-every 200 --minutes 30     # the video guide
    python bench/t2v_latent.py probe  --run $R --guide $G/guide.pt --guide-scales 0 10 --seeds 0 1 2 --record latent-guided
    python bench/t2v_latent.py vprobe --run $R --image $R/diff.pt --motion $V/video.pt --batch 8 --guide $G/guide.pt \
        --vguide $W/vguide.pt --guide-scales 20 --vguide-scales 10 --record latent-vguided      # (--part 1: tuning)
    python bench/t2v_latent.py eval   --run $R ... (as vprobe, one scale each) --record latent-guided-eval

(each run folder holds a copy of the autoencoder's ae.pt and ae.json). `ae` trains the autoencoder on every frame of
the clips of bench/t2v_cpu.py's runs (the Aes subset of a draw of 4000; made if absent; `--every-clip`: every clip of
the draw, the world's bad clips included) with the glyph's pixels weighed 10x, and reports how many of the probe's 40
real clips the reader still reads right after a round trip (ae.json, ae_roundtrip.png). `diff` trains a
text-conditioned U-Net on the latents (the caption's `final+words` tokens in the mid block's cross-attention, or every
level's with --attn; their bag of words as `time_cond_proj_dim`, added to the timestep embedding; `--cond learned`:
trainable word vectors instead, `LearnedWords`; x0 prediction weighted 1 + SNR capped at 5) and probes it: the digit
the reader reads in single images generated for the first 40 held-out one-object prompts of world_eval_clips(120), 20
DDIM steps, guidance 3, and how much the x0 error grows with a wrong digit in the caption (`digit_gap`); `--resume`
goes on from the run's diff.pt, `--init` starts from another run's. `video` inflates a diff checkpoint's EMA weights
with AnimateDiff's motion modules (`motion_unet`) and trains only those on the clips' latents (`--init-motion`: from
another run's modules), probing the videos (digit, motion, frames that agree with their video's digit). `guide` and
`vguide` train the noised text-latent models that guide sampling (`Guide`, `VideoGuide`: GLIDE's noised CLIP
guidance); `probe` and `vprobe` sample images and videos under their guidance at given scales, on the probe's prompts
or (`--part 1`) on the next 40, where the scales are chosen; `eval` grades the guided videos with
world_generation_report as bench/t2v_cpu.py eval does the CPU recipe's, and writes the strip of real and generated
clips. Records: bench/t2v_runs/probes/<--record>.json (eval: bench/t2v_runs/<--record>.json and -strip.png);
weights and probe samples stay in the (ignored) run folders.
"""
import argparse, json, time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

RECORDS = Path(__file__).parent / "t2v_runs" / "probes"
EVERY_CLIP = False   # --every-clip: a missing --data is built from every clip of the draw, not its Aes subset


def write_json(path: Path, obj) -> None:
    "Write JSON atomically (a temporary file beside, then a rename)."
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def clips_of(data: Path):
    "The clips [N, 8, 32, 32, 3] uint8 and their captions."
    if not data.exists():   # the clips of bench/t2v_cpu.py's runs: the Aes subset of a draw of 4000, 8 frames
        from internvid_nb.models.t2v import T2V_CONFIGS
        from internvid_nb.world.generation import world_aes_set
        from t2v_cpu import RECIPES   # bench/ is on the path of a script run from it
        caps, vids, _ = world_aes_set(T2V_CONFIGS["tiny"], 4000, RECIPES["img-c"][1].seed, None if EVERY_CLIP else 2.5)
        data.parent.mkdir(parents=True, exist_ok=True)
        np.savez(data.with_suffix(".tmp.npz"), captions=np.asarray(caps), videos=vids)
        data.with_suffix(".tmp.npz").rename(data)
    z = np.load(data, allow_pickle=False)
    return z["videos"], list(z["captions"])


def frames_of(data: Path):
    "Every frame [N * 8, 32, 32, 3] and its clip's caption."
    v, caps = clips_of(data)
    return v.reshape(-1, *v.shape[2:]), [c for c in caps for _ in range(v.shape[1])]


def to_x(f: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(f).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def to_u8(x: torch.Tensor) -> np.ndarray:
    return x.clamp(-1, 1).add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).numpy()


class AE(nn.Module):
    "32 x 32 x 3 <-> (32 / 2**down)^2 x z, convolutional; the latent is scaled to unit variance after training (`scale`)."

    def __init__(self, ch: int = 32, z: int = 4, down: int = 2):
        super().__init__()
        act = nn.SiLU
        enc = [nn.Conv2d(3, ch // 2, 3, padding=1), act(), nn.Conv2d(ch // 2, ch, 4, 2, 1), act()]
        for _ in range(down - 1):
            enc += [nn.Conv2d(ch, ch, 3, padding=1), act(), nn.Conv2d(ch, ch, 4, 2, 1), act()]
        self.enc = nn.Sequential(*enc, nn.Conv2d(ch, ch, 3, padding=1), act(), nn.Conv2d(ch, z, 1))
        dec = [nn.Conv2d(z, ch, 3, padding=1), act()]
        for _ in range(down - 1):
            dec += [nn.Conv2d(ch, ch, 3, padding=1), act(), nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(ch, ch, 3, padding=1), act()]
        self.dec = nn.Sequential(*dec, nn.Conv2d(ch, ch, 3, padding=1), act(), nn.Upsample(scale_factor=2, mode="nearest"),
                                 nn.Conv2d(ch, ch // 2, 3, padding=1), act(), nn.Conv2d(ch // 2, 3, 3, padding=1))
        self.register_buffer("scale", torch.ones(()))

    def encode(self, x):
        return self.enc(x) / self.scale

    def decode(self, z):
        return self.dec(z * self.scale)


def ae_config(run: Path) -> dict:
    return json.loads((run / "ae.json").read_text())["config"]


def load_ae(run: Path) -> "AE":
    ae = AE(**ae_config(run))
    ae.load_state_dict(torch.load(run / "ae.pt", weights_only=True))
    return ae.eval()


def fg_mask(x: torch.Tensor, side: int) -> torch.Tensor:
    "[N, 3, 32, 32] in [-1, 1] -> [N, 1, side, side]: 1 where a latent cell covers a pixel far from its frame's median colour."
    far = ((x - x.flatten(2).median(-1).values[..., None, None]).abs().amax(1, keepdim=True) > 0.3).float()
    return torch.nn.functional.adaptive_max_pool2d(far, side)


def probe_latents(ae, one, clips: bool = False):
    """Two frames (0 and 4) of each probe prompt's real clip, as latents, and their captions (for `digit_gap`); with
    `clips`, the whole clips' latents [40, C, 8, h, w] and one caption each."""
    from internvid_nb.data.videoio import read_frames
    from internvid_nb.models.t2v import video_tensor
    with torch.no_grad():
        if clips:
            X = torch.stack([ae.encode(to_x(np.stack(video_tensor(read_frames(p, range(24)), 32, 8)))).transpose(0, 1) for p in one.path])
            return X, one.caption_true.tolist()
        X = torch.cat([ae.encode(to_x(np.stack(video_tensor(read_frames(p, range(24)), 32, 8))[::4])) for p in one.path])
    return X, [c for c in one.caption_true for _ in range(2)]


def guide_text_inputs(text, caps):
    "A Guide's text inputs for `caps`: the frozen states and the token ids and mask."
    return (text(caps), *LearnedWords.tokens(text, caps))


def probe_set(part: int = 0):
    """The probe: the first 40 held-out one-object prompts of world_eval_clips(120) and their real clips; `part=1` the
    next 40, on which `probe` and `vprobe` settle the guidance scales (so that the probe's prompts never choose one)."""
    from internvid_nb.world.comparisons import world_eval_clips
    clips = world_eval_clips(120, Path("bench/results/t2v_cpu/eval-clips"))
    return clips[clips.n_objects == 1].reset_index(drop=True).iloc[40 * part:40 * part + 40].reset_index(drop=True)


def train_ae(args):
    from internvid_nb.world.readers import WorldReader
    from internvid_nb.data.videoio import read_frames
    from internvid_nb.models.t2v import video_tensor
    torch.manual_seed(0)
    run = Path(args.run); run.mkdir(parents=True, exist_ok=True)
    frames, _ = frames_of(Path(args.data))
    config = {"ch": args.ae_ch, "z": args.ae_z, "down": args.ae_down}
    ae = AE(**config)
    opt = torch.optim.AdamW(ae.parameters(), 2e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    t0 = time.time()
    for step in range(args.ae_steps):
        x = to_x(frames[torch.randint(len(frames), (64,), generator=g).numpy()])
        z = ae.enc(x)
        # the glyph is a few dozen of 1024 pixels: its pixels (those far from the frame's median colour) weigh 10x,
        # else the plain error is the background's and the decoder draws a blur; a light pull keeps the latent's scale
        w = 1 + 9 * ((x - x.flatten(2).median(-1).values[..., None, None]).abs().amax(1, keepdim=True) > 0.3).float()
        loss = ((ae.dec(z) - x).pow(2) * w).mean() + 1e-4 * z.pow(2).mean()
        opt.zero_grad(); loss.backward(); opt.step()
        for grp in opt.param_groups:
            grp["lr"] = 2e-3 * 0.5 * (1 + np.cos(np.pi * step / args.ae_steps))
        if step % 200 == 0:
            print(f"ae step {step} loss {loss.item():.4f} {time.time() - t0:.0f} s", flush=True)
    with torch.no_grad():
        zs = torch.cat([ae.enc(to_x(frames[s:s + 512])) for s in range(0, min(len(frames), 8192), 512)])
        ae.scale.fill_(float(zs.std()))
    torch.save(ae.state_dict(), run / "ae.pt")
    one = probe_set()
    real = [video_tensor(read_frames(p, range(24)), 32, 8) for p in one.path]
    with torch.no_grad():
        rt = [np.stack(to_u8(ae.decode(ae.encode(to_x(v))))) for v in real]
    reader = WorldReader.from_pretrained()
    acc = lambda vids: float((reader.read(vids)["digit"] == one.digit.to_numpy()).mean() * 100)
    rec = {"config": config, "ae steps": args.ae_steps, "ae seconds": time.time() - t0, "ae loss": loss.item(), "latent std": float(ae.scale),
           "real clips' digit read right, %": acc(real), "after the autoencoder's round trip, %": acc(rt)}
    print(rec, flush=True)
    write_json(run / "ae.json", rec)
    strip = np.concatenate([np.concatenate([r[0] for r in real[:10]], 1), np.concatenate([r[0] for r in rt[:10]], 1)], 0)
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    plt.imsave(run / "ae_roundtrip.png", strip)


def unet_and_text(z: int, side: int, attn: bool = False):
    "The latent U-Net; `attn`: the caption's tokens in cross-attention at every level, not only in the mid block."
    from diffusers import UNet2DConditionModel
    from internvid_nb.models.t2v import TextEncoder
    text = TextEncoder("viclip-tiny", tokens="final+words")
    unet = UNet2DConditionModel(sample_size=side, in_channels=z, out_channels=z, block_out_channels=(64, 128, 128),
                                down_block_types=(("CrossAttnDownBlock2D" if attn else "DownBlock2D"),) * 3,
                                up_block_types=(("CrossAttnUpBlock2D" if attn else "UpBlock2D"),) * 3,
                                layers_per_block=2, cross_attention_dim=text.dim, attention_head_dim=8,
                                norm_num_groups=16, time_cond_proj_dim=text.dim)
    return unet, text


class LearnedWords(nn.Module):
    """The caption's words as trainable vectors (`--cond learned`): they replace the frozen `final+words` layout's word
    tokens and its bag of words (the `time_cond_proj_dim` input), while the encoder's contextual tokens stay frozen. A
    frozen bag is the mean of ~12 word embeddings in which the digit moves the vector little (a linear probe reads the
    digit from it in 88% of captions, from the position-0 token at chance), and a U-Net at 96k frames scored the wrong
    digit's caption within 1% of the right one's; here each word, the digit's included, gets its own free vector, as a
    class-conditional model's label embedding. Rows: the tokens of the training captions (init: the frozen embeddings,
    scaled as `final+words` scales them); any other token shares row 0."""

    def __init__(self, text, captions):
        super().__init__()
        ids, mask = self.tokens(text, captions)
        vocab = torch.unique(ids[mask])
        self.register_buffer("vocab", vocab)
        lut = torch.zeros(text.model.text_encoder.token_embedding.num_embeddings, dtype=torch.long)
        lut[vocab] = torch.arange(1, len(vocab) + 1)
        self.register_buffer("lut", lut)
        with torch.no_grad():
            ref = text(captions[:256])
            loud = ref[:, :ids.shape[1]].norm(dim=-1).mean()   # the contextual tokens' norm, as `final+words` does
            w = text.model.text_encoder.token_embedding.weight[vocab]
            w = w * loud / w.norm(dim=-1).mean()
        self.emb = nn.Parameter(torch.cat([w.mean(0, keepdim=True), w]))

    @staticmethod
    def tokens(text, captions):
        from internvid_nb.models.tokenizer import ClipTokenizer
        ids = text.model.tokenize(list(captions))
        end = (ids == ClipTokenizer.eot).int().argmax(1, keepdim=True)
        return ids, torch.arange(ids.shape[1])[None] <= end

    def forward(self, states, ids, mask):
        "Frozen `final+words` states [B, 2L + 1, D] with their word tokens and bag swapped for the learned vectors."
        L = ids.shape[1]
        w = self.emb[self.lut[ids]] * mask[..., None]
        return torch.cat([states[:, :L], w, w.sum(1, keepdim=True) / mask.sum(1)[:, None, None]], 1)


def conditioner(text, words=None):
    "captions -> the U-Net's condition states: the frozen encoder's, with `words` (LearnedWords) applied if given."
    def cond(captions):
        s = text(list(captions))
        return s if words is None else words(s, *LearnedWords.tokens(text, captions))
    return cond


def load_image_model(image: Path, run: Path, data: Path):
    """A `diff` checkpoint's U-Net at its EMA weights, with its learned words (`--cond learned`) at theirs: (unet, text
    encoder, captions -> condition states, checkpoint, its diff.json)."""
    ae_cfg = ae_config(run)
    dcfg = json.loads((image.parent / "diff.json").read_text())   # the image model's U-Net and batch (its frames seen)
    unet, text = unet_and_text(ae_cfg["z"], 32 >> ae_cfg["down"], dcfg["attn"])
    ck = torch.load(image, weights_only=True)
    words = None
    if "words" in ck:   # built from the training captions as `diff` built them, so that the vocabulary is the same
        words = LearnedWords(text, sorted(set(clips_of(data)[1]) | {""}))
        words.load_state_dict(ck["words"])
    with torch.no_grad():
        for p, e in zip(list(unet.parameters()) + ([] if words is None else list(words.parameters())), ck["ema"]):
            p.copy_(e)
    return unet.eval(), text, conditioner(text, words), ck, dcfg


def load_motion(vm, motion: Path) -> dict:
    "Copy a video.pt's motion modules (their EMA) into the inflated U-Net `vm`; returns the checkpoint."
    ck = torch.load(motion, weights_only=True)
    with torch.no_grad():
        for p, e in zip([p for p in vm.parameters() if p.requires_grad], ck["ema"]):
            p.copy_(e)
    return ck


def digit_gap(unet, cond, X, caps, ts=(200, 400, 600, 800)):
    """How much the U-Net's x0 error grows when the caption names another digit: over `ts` the mean of (mean error with
    3 wrong digits - mean error with the right one) / mean error with the right one, in %, on real frames' latents
    `X` (a model that ignores the digit word scores 0). Also the share of frames whose error grows."""
    import re
    from diffusers import DDPMScheduler
    sch = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="sample")
    g, gaps, wins = torch.Generator().manual_seed(0), [], []
    with torch.no_grad():
        right = cond(caps)
        wrong = [cond([re.sub(r"digit (\d)", lambda m: f"digit {(int(m.group(1)) + k) % 10}", c) for c in caps]) for k in (1, 3, 5)]
        for t in ts:
            noisy = sch.add_noise(X, torch.randn(X.shape, generator=g), torch.full((len(X),), t))
            err = lambda s: (unet(noisy, t, encoder_hidden_states=s, timestep_cond=s[:, -1]).sample - X).pow(2).flatten(1).mean(1)
            e0, ew = err(right), torch.stack([err(s) for s in wrong]).mean(0)
            gaps.append(float((ew - e0).mean() / e0.mean() * 100)); wins.append(float((ew > e0).float().mean() * 100))
    return float(np.mean(gaps)), float(np.mean(wins))


class Guide(nn.Module):
    """A noised text-latent model for guidance (GLIDE's noised CLIP, Nichol et al. 2022, section 2.4): a small
    convolutional encoder of a noisy latent z_t and its timestep, and a bag of learned word vectors for the caption,
    both to unit vectors, trained contrastively on the captioned frames. The diffusion loss gives the digit word a tiny
    share (the digit is a few of 64 cells, and at high noise its shape hardly lowers the error), while a contrastive
    loss is decided by what tells captions apart, the digit among it. At sampling, the gradient of the caption's
    similarity with respect to z_t is added to the U-Net's predicted x0 (classifier guidance in x0 form). It trains on
    t < 900, while 20-step DDIM ("leading" spacing) starts at t = 950 and 900, where the guidance term's factor is
    largest: there the guide extrapolates. Every graded run guides every step; `probe --guide-below 900` skips those two
    steps (on the tuning prompts it reads as many digits or more: the result does not come from the extrapolation)."""

    def __init__(self, text, captions, z: int = 8, ch: int = 96, dim: int = 128):
        super().__init__()
        self.words = LearnedWords(text, captions)
        self.text_proj = nn.Sequential(nn.Linear(text.dim, 256), nn.SiLU(), nn.Linear(256, dim))
        self.t_emb = nn.Sequential(nn.Linear(64, ch), nn.SiLU(), nn.Linear(ch, 2 * ch))
        self.inp = nn.Conv2d(z, ch, 3, padding=1)
        self.body = nn.ModuleList([nn.Conv2d(ch, ch, 3, padding=1) for _ in range(4)])
        self.norms = nn.ModuleList([nn.GroupNorm(8, ch) for _ in range(4)])
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(2 * ch, 256), nn.SiLU(), nn.Linear(256, dim))
        self.logit_scale = nn.Parameter(torch.tensor(np.log(10.0), dtype=torch.float32))

    def film(self, t, n: int):
        "The timestep's FiLM scale and shift [n, ch] from sinusoidal features."
        t = torch.as_tensor(t, dtype=torch.float32).expand(n)
        f = torch.exp(-np.log(1e4) * torch.arange(32) / 32)
        return self.t_emb(torch.cat([torch.sin(t[:, None] * f), torch.cos(t[:, None] * f)], 1)).chunk(2, 1)

    def embed_latent(self, z, t):
        sc, sh = (a[..., None, None] for a in self.film(t, len(z)))
        h = self.inp(z)
        for i, (conv, norm) in enumerate(zip(self.body, self.norms)):
            h = h + conv(nn.functional.silu(norm(h) * (1 + sc) + sh))
            if i == 1:
                h = nn.functional.avg_pool2d(h, 2)
        h = torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)   # where the glyph is does not matter, what it is does
        return nn.functional.normalize(self.out(h), dim=-1)

    def embed_text(self, states, ids, mask):
        return nn.functional.normalize(self.text_proj(self.words(states, ids, mask)[:, -1]), dim=-1)


class VideoGuide(Guide):
    """The Guide for video latents [B, C, T, h, w] (a noised ViCLIP, in a way): the same text side, and 3-D convolutions
    over frames and cells, so that a motion (a glyph that moves, turns or grows from frame to frame) is a local pattern
    that the global pooling keeps."""

    def __init__(self, text, captions, z: int = 8, ch: int = 64, dim: int = 128):
        super().__init__(text, captions, z, ch, dim)
        self.inp = nn.Conv3d(z, ch, 3, padding=1)
        self.body = nn.ModuleList([nn.Conv3d(ch, ch, 3, padding=1) for _ in range(4)])

    def embed_latent(self, z, t):
        sc, sh = (a[..., None, None, None] for a in self.film(t, len(z)))
        h = self.inp(z)
        for i, (conv, norm) in enumerate(zip(self.body, self.norms)):
            h = h + conv(nn.functional.silu(norm(h) * (1 + sc) + sh))
            if i == 1:
                h = nn.functional.avg_pool3d(h, (1, 2, 2))
        h = torch.cat([h.mean((2, 3, 4)), h.amax((2, 3, 4))], 1)
        return nn.functional.normalize(self.out(h), dim=-1)


def guide_of(path):
    "A trained Guide (or VideoGuide) and its text encoder from `guide`'s guide.pt (or vguide.pt)."
    from internvid_nb.models.t2v import TextEncoder
    ck = torch.load(path, weights_only=True)
    text = TextEncoder("viclip-tiny", tokens="final+words")
    g = (VideoGuide if ck.get("video") else Guide)(text, ck["captions"], **ck["config"])
    g.load_state_dict(ck["state"])
    return g.eval(), text


@torch.no_grad()
def sample(unet, ae, states, empty, steps=20, guidance=3.0, seed=0, guide=None, guide_text=None, guide_scale=0.0,
           guide_below: int = 1000):
    """DDIM with classifier-free guidance; with a `guide` (Guide) and `guide_text` (its caption vectors), the gradient
    of their similarity (the logit) with respect to z_t moves the predicted x0 by guide_scale (1 - a) / sqrt(a) times it
    (the score's guidance term, written for x0)."""
    from diffusers import DDIMScheduler
    sch = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="sample",
                        clip_sample=False)
    sch.set_timesteps(steps)
    cfg = unet.config
    z = torch.randn(len(states), cfg.in_channels, cfg.sample_size, cfg.sample_size, generator=torch.Generator().manual_seed(seed))
    both = torch.cat([states, empty.expand_as(states)])
    for t in sch.timesteps:
        out = unet(torch.cat([z, z]), t, encoder_hidden_states=both, timestep_cond=both[:, -1]).sample
        c, u = out.chunk(2)
        x0 = u + guidance * (c - u)
        if guide is not None and guide_scale and t < guide_below:   # guide_below=900: only where the guide trained
            a = sch.alphas_cumprod[t]
            x0 = x0 + (1 - a) / a.sqrt() * guide_grad([(guide, guide_text, guide_scale)], z, t)
        z = sch.step(x0, t, z).prev_sample
    return to_u8(ae.decode(z))


def digit_swaps(caps):
    "Each caption with its digit word replaced by each of the 10 digits: [len(caps) * 10] captions, digit d at d."
    import re
    return [re.sub(r"digit (\d)", f"digit {d}", c) for c in caps for d in range(10)]


def motion_swaps(caps):
    "Each caption with its motion phrase replaced by each of the world's 9: [len(caps) * 9], in MOTION_NAMES' order."
    from internvid_nb.world.render import MOTIONS
    out = []
    for c in caps:
        m = next(v for v in MOTIONS.values() if v in c)
        out += [c.replace(m, v) for v in MOTIONS.values()]
    return out


def train_guide(args):
    """Train the Guide on every frame's latent at a random timestep (t < 900: above it the latent is mostly noise),
    256 frames a step, a symmetric contrastive loss over the batch's distinct captions; then report how often it ranks a
    probe frame's caption first among its ten digit variants (a model blind to the digit: 10%) at t = 0, 300, 600."""
    from diffusers import DDPMScheduler
    torch.manual_seed(0)
    run = Path(args.run)
    ae = load_ae(run)
    video = args.what == "vguide"
    from internvid_nb.models.t2v import TextEncoder
    text = TextEncoder("viclip-tiny", tokens="final+words")
    if video:
        vids, caps = clips_of(Path(args.data))
        N, T = vids.shape[:2]
        with torch.no_grad():
            Z = torch.cat([ae.encode(to_x(vids[s:s + 128].reshape(-1, 32, 32, 3))) for s in range(0, N, 128)])
            Z = Z.reshape(N, T, *Z.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()   # [N, C, T, h, w]
    else:
        frames, caps = frames_of(Path(args.data))
        with torch.no_grad():
            Z = torch.cat([ae.encode(to_x(frames[s:s + 1024])) for s in range(0, len(frames), 1024)])
    uniq, inv = np.unique(np.asarray(caps), return_inverse=True)
    uniq = [str(c) for c in uniq]
    with torch.no_grad():
        states = torch.cat([text(uniq[s:s + 256]) for s in range(0, len(uniq), 256)])
    ids, mask = LearnedWords.tokens(text, uniq)
    config = {"z": Z.shape[1], "ch": 64 if video else 96, "dim": 128}
    guide = (VideoGuide if video else Guide)(text, uniq, **config)
    B = 64 if video else 256
    opt = torch.optim.AdamW(guide.parameters(), 1e-3, weight_decay=0.01)
    sch = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="sample")
    one = probe_set()
    px, pcaps = probe_latents(ae, one, clips=video)
    swaps = {"digit": (digit_swaps(pcaps), 10, [int(d) for d in one.digit for _ in range(1 if video else 2)])}
    if video:
        from internvid_nb.world.readers import MOTION_NAMES
        swaps["motion"] = (motion_swaps(pcaps), 9, [MOTION_NAMES.index(m) for m in one.motion])
    with torch.no_grad():
        swaps = {k: (guide_text_inputs(text, sw), n, torch.as_tensor(y)) for k, (sw, n, y) in swaps.items()}
    g, t0, step, log = torch.Generator().manual_seed(3), time.time(), 0, []

    def evaluate():
        guide.eval()
        accs = {}
        with torch.no_grad():
            for k, (inp, n, y) in swaps.items():
                te = guide.embed_text(*inp).view(len(px), n, -1)
                accs.update({f"{k} ranked first at t={t}, %": float(((guide.embed_latent(px, t)[:, None] * te).sum(-1).argmax(1) == y).float().mean() * 100)
                             for t in (0, 300, 600)})
        guide.train()
        return accs

    while time.time() - t0 < args.minutes * 60 and step < args.max_steps:
        idx = torch.randint(len(Z), (B,), generator=g)
        t = torch.randint(0, 900, (B,), generator=g)
        zt = sch.add_noise(Z[idx], torch.randn(Z[idx].shape, generator=g), t)
        ci = torch.as_tensor(inv[idx.numpy()])
        u, back = torch.unique(ci, return_inverse=True)
        li = guide.embed_latent(zt, t)
        lt = guide.embed_text(states[u], ids[u], mask[u])
        logits = guide.logit_scale.exp().clamp(max=100) * li @ lt.T           # [256 frames, distinct captions]
        pos = logits.T.masked_fill(back[None] != torch.arange(len(u))[:, None], -torch.inf)   # a caption's frames
        loss = (nn.functional.cross_entropy(logits, back) + (torch.logsumexp(logits.T, 1) - torch.logsumexp(pos, 1)).mean()) / 2
        opt.zero_grad(); loss.backward(); opt.step()
        step += 1
        if step % args.probe_every == 0 or step == args.max_steps:
            rec = {"step": step, "loss": loss.item(), "seconds": time.time() - t0, **evaluate()}
            log.append(rec); print(rec, flush=True)
            name = "vguide" if video else "guide"
            torch.save({"state": guide.state_dict(), "captions": uniq, "config": config, "step": step, "log": log,
                        "video": video}, run / f"{name}.tmp.pt")
            (run / f"{name}.tmp.pt").replace(run / f"{name}.pt")


def probe_video_guided(args):
    """Probe videos of an image model (`--image`, diff.pt's EMA) with motion modules (`--motion`, a video.pt) under
    guidance by an image Guide (`--guide`) and a VideoGuide (`--vguide`) at every pair of `--guide-scales` and
    `--vguide-scales`: video digit and motion accuracy and frame agreement, on the probe prompts (`--part 0`) or the
    next 40 (`--part 1`, where the scales are chosen)."""
    from internvid_nb.world.readers import WorldReader, MOTION_NAMES
    run = Path(args.run)
    ae = load_ae(run)
    unet2d, text, cond_of, ck, dcfg = load_image_model(Path(args.image), run, Path(args.data))
    vm = motion_unet(unet2d)
    mot = load_motion(vm, Path(args.motion))
    vm.eval()
    one = probe_set(args.part)
    caps = one.caption_true.tolist()
    with torch.no_grad():
        p_states, p_empty = cond_of(caps), cond_of([""])
    guides = []
    for path in (args.guide, args.vguide):
        if path:
            gd, gt = guide_of(path)
            with torch.no_grad():
                guides.append((gd, gd.embed_text(*guide_text_inputs(gt, caps))))
    reader = WorldReader.from_pretrained()
    y, ym = one.digit.to_numpy(), np.array([MOTION_NAMES.index(m) for m in one.motion])
    rec_p = RECORDS / f"{args.record}.json"
    recs = json.loads(rec_p.read_text()) if rec_p.exists() else {}
    for gs, vs, seed in [(a, b, c) for a in args.guide_scales for b in args.vguide_scales for c in args.seeds]:
        scales = [s for s, path in zip((gs, vs), (args.guide, args.vguide)) if path]
        t0 = time.time()
        v = sample_video(vm, ae, p_states, p_empty, frames=8, seed=seed,
                         guides=[(g, e, s) for (g, e), s in zip(guides, scales)])
        r = reader.read(list(v))
        key = (f"image-{ck['step']:06d}+motion-{mot['step']:06d}-guide-{gs:g}-vguide-{vs:g}"
               + ("" if args.part == 0 else f"-part{args.part}") + ("" if seed == 0 else f"-seed{seed}"))
        recs[key] = {"step": mot["step"], "image step": ck["step"], "guide scale": gs, "vguide scale": vs, "seed": seed,
                     "prompts": len(y), "prompt set": ["probe", "tuning"][args.part],
                     "clips_seen": mot["step"] * mot.get("batch", args.batch), "frames_seen": ck["step"] * dcfg["batch"] + dcfg.get("init frames", 0),
                     "video digit accuracy": float((r["digit"] == y).mean() * 100),
                     "video motion accuracy": float((r["motion"] == ym).mean() * 100),
                     "frames reading the video's digit, %": float((r["frame_probs"].argmax(-1) == r["digit"][:, None]).mean() * 100),
                     "digit prior (most common answer), %": float(np.bincount(r["digit"]).max() / len(y) * 100),
                     "seconds": time.time() - t0}
        print(key, {k: round(v_, 1) if isinstance(v_, float) else v_ for k, v_ in recs[key].items()}, flush=True)
        np.save(run / f"video-probe-{key}.npy", v)
        write_json(rec_p, recs)


class GuidedLatentT2V:
    """The latent pipeline as `world_generation_report` takes a TextToVideo: an image model (diff.pt's EMA) inflated
    with motion modules (video.pt's EMA), sampled with classifier-free guidance 3 and the guides at their scales."""

    def __init__(self, run: Path, image: Path, motion: Path, guides: dict, name: str, batch: int = 8,
                 data: Path = Path("bench/results/t2v_cpu/img-c/data.npz")):
        from types import SimpleNamespace
        self.ae = load_ae(run)
        unet2d, _, self.cond_of, self.image_ck, dcfg = load_image_model(image, run, data)
        self.vm = motion_unet(unet2d)
        self.motion_ck = load_motion(self.vm, motion)
        self.vm.eval()
        self.guides = [(*guide_of(path), scale) for path, scale in guides.items() if path]
        self.seen = {"step": self.image_ck["step"], "frames_seen": self.image_ck["step"] * dcfg["batch"] + dcfg.get("init frames", 0),
                     "clips_seen": self.motion_ck["step"] * self.motion_ck.get("batch", batch)}
        self.name, self.config = name, SimpleNamespace(size=32, frames=8)

    def __call__(self, prompts, steps=20, guidance=3.0, seed=0, videos=None, strength=1.0):
        if videos is not None:
            raise ValueError("GuidedLatentT2V does not edit videos: pass edit_strengths=()")
        out = []
        for s in range(0, len(prompts), 40):
            caps = list(prompts[s:s + 40])
            with torch.no_grad():
                g = [(gd, gd.embed_text(*guide_text_inputs(gt, caps)), sc) for gd, gt, sc in self.guides]
                v = sample_video(self.vm, self.ae, self.cond_of(caps), self.cond_of([""]), frames=8, steps=steps,
                                 guidance=guidance, seed=seed + s, guides=g)
            out += list(v)
        return out


def evaluate(args):
    """`bench/t2v_cpu.py eval` for the guided latent pipeline: world_generation_report on the held-out one-object prompts
    of world_eval_clips(120) (93; the 40 of `--part 1` among them chose the scales), without edits; the record goes to
    bench/t2v_runs/<--record>.json, as the CPU recipe's snapshots do. Prompts are sampled 40 at a time, chunk k with
    seed k * 40 (so the first 40 share vprobe's seed-0 noise)."""
    from internvid_nb.world.generation import world_generation_report
    from internvid_nb.world.readers import WorldReader
    run = Path(args.run)
    pipe = GuidedLatentT2V(run, Path(args.image), Path(args.motion),
                           {args.guide: args.guide_scales[0], args.vguide: args.vguide_scales[0]}, args.record, args.batch,
                           Path(args.data))
    t0 = time.time()
    r = world_generation_report(pipe, n_test=120, reader=WorldReader.from_pretrained(), folder=Path("bench/results/t2v_cpu/eval-clips"),
                                rounds=200, edit_strengths=())
    keep = {k: v for k, v in r.items() if isinstance(v, (int, float, str))}
    keep |= {"rows": r["rows"], "eval_seconds": time.time() - t0, **pipe.seen, "guide scale": args.guide_scales[0],
             "vguide scale": args.vguide_scales[0], "image": args.image, "motion": args.motion, "guide": args.guide,
             "vguide": args.vguide,
             "strip prompts": r["prompt_list"][:8]}
    # the strip (committed beside the record): for the first 8 prompts, the real clip's 8 frames, then the generated
    strip = np.concatenate([np.concatenate([np.concatenate(list(r["real"][i]), 1), np.full((32, 8, 3), 255, np.uint8),
                                            np.concatenate(list(r["videos"][i]), 1)], 1) for i in range(8)], 0)
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    plt.imsave(RECORDS.parent / f"{args.record}-strip.png", strip)
    rec_p = RECORDS.parent / f"{args.record}.json"
    recs = json.loads(rec_p.read_text()) if rec_p.exists() else {}
    recs[f"snap-{pipe.seen['step']:06d}"] = keep
    print({k: v for k, v in keep.items() if k != "rows"}, flush=True)
    write_json(rec_p, recs)
    np.save(run / f"eval-{args.record}.npy", np.stack(r["videos"]))


def probe_guided(args):
    """Probe `run`'s image model (diff.pt's EMA) with the Guide of `--guide` at each of `--guide-scales`: image digit
    accuracy on the probe prompts (`--part 0`) or on the next 40 (`--part 1`, where the scale is chosen)."""
    from internvid_nb.world.readers import WorldReader
    run = Path(args.run)
    ae = load_ae(run)
    unet, text, cond_of, ck, dcfg = load_image_model(run / "diff.pt", run, Path(args.data))
    guide, gtext = guide_of(args.guide)
    one = probe_set(args.part)
    caps = one.caption_true.tolist()
    with torch.no_grad():
        p_states, p_empty = cond_of(caps), cond_of([""])
        g_text = guide.embed_text(*guide_text_inputs(gtext, caps))
    reader = WorldReader.from_pretrained()
    y = one.digit.to_numpy()
    rec_p = RECORDS / f"{args.record}.json"
    recs = json.loads(rec_p.read_text()) if rec_p.exists() else {}
    for scale, seed in [(a, b) for a in args.guide_scales for b in args.seeds]:
        t0 = time.time()
        imgs = sample(unet, ae, p_states, p_empty, guide=guide, guide_text=g_text, guide_scale=scale, seed=seed,
                      guide_below=args.guide_below)
        r = reader.read([np.repeat(f[None], 8, 0) for f in imgs])
        key = (f"step-{ck['step']:06d}-guide-{scale:g}" + ("" if args.part == 0 else f"-part{args.part}")
               + ("" if args.guide_below == 1000 else f"-below{args.guide_below}")
               + ("" if seed == 0 else f"-seed{seed}"))
        recs[key] = {"step": ck["step"], "guide scale": scale, "seed": seed, "guided below t": args.guide_below, "prompts": len(y), "prompt set": ["probe", "tuning"][args.part],
                     "clips_seen": 0, "frames_seen": ck["step"] * dcfg["batch"] + dcfg.get("init frames", 0),
                     "image digit accuracy": float((r["digit"] == y).mean() * 100),
                     "digit prior (most common answer), %": float(np.bincount(r["digit"]).max() / len(y) * 100),
                     "seconds": time.time() - t0}
        print(key, recs[key], flush=True)
        np.save(run / f"probe-{key}.npy", imgs)
    write_json(rec_p, recs)


def train_diff(args):
    from diffusers import DDPMScheduler
    from internvid_nb.world.readers import WorldReader
    torch.manual_seed(0)
    run = Path(args.run)
    ae = load_ae(run)
    frames, caps = frames_of(Path(args.data))
    unet, text = unet_and_text(ae.enc[-1].out_channels, 32 >> ae_config(run)["down"], args.attn)
    dcfg = {"attn": args.attn, "batch": args.batch, "fg_weight": args.fg_weight, "cond": args.cond}
    if args.resume:   # the run's own settings stand (and its warm start's frames): a resume changes none of them
        old = json.loads((run / "diff.json").read_text())
        if any(old.get(k, v) != v for k, v in dcfg.items()):
            raise SystemExit(f"--resume of {run} with other settings than its diff.json's: {old}")
    else:
        write_json(run / "diff.json", dcfg)
    uniq, inv = np.unique(np.asarray(caps + [""]), return_inverse=True)
    states = torch.cat([text(list(uniq[s:s + 256])) for s in range(0, len(uniq), 256)])
    empty_i = int(inv[-1]); inv = inv[:-1]
    words = LearnedWords(text, list(uniq)) if args.cond == "learned" else None
    ids, mask = LearnedWords.tokens(text, list(uniq))
    cond_of = conditioner(text, words)
    with torch.no_grad():
        Z = torch.cat([ae.encode(to_x(frames[s:s + 1024])) for s in range(0, len(frames), 1024)])
        # the glyph's latent cells (a pixel far from its frame's median colour inside), weighed `--fg-weight` times in
        # the loss: the digit is a few of 64 cells, and an unweighted loss is ruled by the background's
        fg = torch.cat([fg_mask(to_x(frames[s:s + 1024]), Z.shape[-1]) for s in range(0, len(frames), 1024)])
    wmap = 1 + (args.fg_weight - 1) * fg
    print(f"{len(Z)} latents, std {Z.std():.3f}, {len(uniq)} captions", flush=True)
    one = probe_set()
    gap_x, gap_caps = probe_latents(ae, one)
    reader = WorldReader.from_pretrained()
    sch = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="sample")
    ac = sch.alphas_cumprod
    params = list(unet.parameters()) + ([] if words is None else list(words.parameters()))
    opt = torch.optim.AdamW(params, 5e-4, weight_decay=0.01)
    ema = [p.detach().clone() for p in params]
    recs = json.loads((RECORDS / f"{args.record}.json").read_text()) if (RECORDS / f"{args.record}.json").exists() else {}
    B, g, t0 = args.batch, torch.Generator().manual_seed(1), time.time()
    step = 0
    if args.resume:   # this run's diff.pt: weights, EMA, optimizer, step and the batch generator go on where they were
        ck = torch.load(run / "diff.pt", weights_only=True)
        unet.load_state_dict(ck["unet"])
        if words is not None:
            words.load_state_dict(ck["words"])
        ema, step = ck["ema"], ck["step"]
        opt.load_state_dict(ck["opt"]); g.set_state(ck["rng"])
        t0 -= ck["seconds"]; args.minutes += ck["seconds"] / 60
        print(f"resumed at step {step}", flush=True)
    elif args.init:   # warm start from another run's EMA U-Net (its frames seen are counted in `init frames`)
        ck = torch.load(args.init, weights_only=True)
        with torch.no_grad():
            for p, e in zip(unet.parameters(), ck["ema"][:len(list(unet.parameters()))]):
                p.copy_(e)
        ema = [p.detach().clone() for p in params]
        src = json.loads((Path(args.init).parent / "diff.json").read_text())   # a chain of warm starts counts on
        write_json(run / "diff.json", {**dcfg, "init": args.init, "init frames": ck["step"] * src["batch"] + src.get("init frames", 0)})
    init_frames = json.loads((run / "diff.json").read_text()).get("init frames", 0)
    while time.time() - t0 < args.minutes * 60 and step < args.max_steps:
        idx = torch.randint(len(Z), (B,), generator=g)
        x = Z[idx]
        drop = torch.rand(B, generator=g) < 0.1
        sel = torch.as_tensor(np.where(drop.numpy(), empty_i, inv[idx.numpy()]))
        cond = states[sel] if words is None else words(states[sel], ids[sel], mask[sel])
        noise = torch.randn(x.shape, generator=g)
        t = torch.randint(0, 1000, (B,), generator=g)
        noisy = sch.add_noise(x, noise, t)
        pred = unet(noisy, t, encoder_hidden_states=cond, timestep_cond=cond[:, -1]).sample
        snr = ac[t] / (1 - ac[t])
        loss = (((pred - x).pow(2) * wmap[idx]).flatten(1).mean(1) * (1 + snr).clamp(max=5.0)).mean()
        for grp in opt.param_groups:
            grp["lr"] = 5e-4 * min(1.0, (step + 1) / 200)
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - min(0.999, (1 + step) / (10 + step)))
        step += 1
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.4f} {step * B / (time.time() - t0):.0f} frames/s", flush=True)
        if step % args.probe_every == 0:
            live = [p.detach().clone() for p in params]
            with torch.no_grad():
                for p, e in zip(params, ema):
                    p.copy_(e)
                p_states, p_empty = cond_of(one.caption_true.tolist()), cond_of([""])
            unet.eval()
            imgs = sample(unet, ae, p_states, p_empty)
            r = reader.read([np.repeat(f[None], 8, 0) for f in imgs])
            y = one.digit.to_numpy()
            gap, wins = digit_gap(unet, cond_of, gap_x, gap_caps)
            recs[f"step-{step:06d}"] = {"step": step, "prompts": len(y), "clips_seen": 0, "frames_seen": step * B + init_frames,
                                       "image digit accuracy": float((r["digit"] == y).mean() * 100),
                                       "digit prior (most common answer), %": float(np.bincount(r["digit"]).max() / len(y) * 100),
                                       "wrong digit's x0 error, % over the right one's": gap,
                                       "frames whose x0 error grows with a wrong digit, %": wins,
                                       "seconds": time.time() - t0}
            print(recs[f"step-{step:06d}"], flush=True)
            write_json(RECORDS / f"{args.record}.json", recs)
            np.save(run / f"probe-{step:06d}.npy", imgs)
            with torch.no_grad():
                for p, l in zip(params, live):
                    p.copy_(l)
            unet.train()
            ck = {"unet": unet.state_dict(), "ema": ema, "step": step, "opt": opt.state_dict(), "rng": g.get_state(),
                  "seconds": time.time() - t0, **({} if words is None else {"words": words.state_dict()})}
            torch.save(ck, run / "diff.tmp.pt"); (run / "diff.tmp.pt").replace(run / "diff.pt")


def motion_unet(unet2d):
    """AnimateDiff's inflation (diffusers' UNetMotionModel.from_unet2d): the image U-Net's layers, a temporal transformer
    after each resnet (attention across the frames at each latent cell, sinusoidal frame positions); their output
    projections start at zero, so that at step 0 every frame is the image model's (AnimateDiff zero-inits them too)."""
    from diffusers import UNetMotionModel
    vm = UNetMotionModel.from_unet2d(unet2d)
    with torch.no_grad():
        for name, p in vm.named_parameters():
            if "motion_modules" in name and "proj_out" in name:
                p.zero_()
    vm.freeze_unet2d_params()   # the image model stays as trained: only the motion modules learn
    return vm


def guide_grad(guides, z, t):
    """The summed guidance gradients at z_t: for each (guide, its caption vectors, scale), scale times the gradient of
    the logit with respect to z_t; an image Guide on video latents [B, C, T, h, w] scores every frame."""
    total = torch.zeros_like(z)
    for guide, emb, scale in guides:
        if not scale:
            continue
        with torch.enable_grad():
            zt = z.detach().requires_grad_()
            if zt.dim() == 5 and not isinstance(guide, VideoGuide):
                T = zt.shape[2]
                lat = guide.embed_latent(zt.transpose(1, 2).flatten(0, 1), t).unflatten(0, (len(zt), T))
                sim = (lat * emb[:, None]).sum()
            else:
                sim = (guide.embed_latent(zt, t) * emb).sum()
            grad, = torch.autograd.grad(sim * guide.logit_scale.exp(), zt)
        total += scale * grad
    return total


@torch.no_grad()
def sample_video(vm, ae, states, empty, frames=8, steps=20, guidance=3.0, seed=0, guides=()):
    from diffusers import DDIMScheduler
    sch = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="sample",
                        clip_sample=False)
    sch.set_timesteps(steps)
    c = vm.config
    z = torch.randn(len(states), c.in_channels, frames, c.sample_size, c.sample_size, generator=torch.Generator().manual_seed(seed))
    both = torch.cat([states, empty.expand_as(states)])
    ctx = both.repeat_interleave(frames, 0)
    for t in sch.timesteps:
        out = vm(torch.cat([z, z]), t, encoder_hidden_states=ctx, timestep_cond=both[:, -1]).sample
        cnd, unc = out.chunk(2)
        x0 = unc + guidance * (cnd - unc)
        if guides:   # as `sample`: the guides' score term, written for x0
            a = sch.alphas_cumprod[t]
            x0 = x0 + (1 - a) / a.sqrt() * guide_grad(guides, z, t)
        z = sch.step(x0, t, z).prev_sample
    n, C, T, H, W = z.shape
    return to_u8(ae.decode(z.permute(0, 2, 1, 3, 4).reshape(n * T, C, H, W))).reshape(n, T, 32, 32, 3)


def train_video(args):
    """Image then video: the `diff` model's EMA weights inflated with motion modules (`motion_unet`), which alone train
    on the clips' latents (8 frames, the image loss without a glyph weight); probes the videos as bench/t2v_cpu.py probe does."""
    from diffusers import DDPMScheduler
    from internvid_nb.world.readers import WorldReader, MOTION_NAMES
    torch.manual_seed(0)
    run = Path(args.run)
    ae = load_ae(run)
    image = Path(args.image) if args.image else run / "diff.pt"
    unet2d, text, cond_of, ck, dcfg = load_image_model(image, run, Path(args.data))
    vids, caps = clips_of(Path(args.data))
    vm = motion_unet(unet2d)
    params = [p for p in vm.parameters() if p.requires_grad]
    if args.motion:   # AnimateDiff's premise: motion modules trained beside one image model serve its later snapshots
        with torch.no_grad():
            for p, e in zip(params, torch.load(args.motion, weights_only=True)["ema"]):
                p.copy_(e)
    N, T = vids.shape[:2]
    with torch.no_grad():
        Z = torch.cat([ae.encode(to_x(vids[s:s + 128].reshape(-1, 32, 32, 3))) for s in range(0, N, 128)])
        Z = Z.reshape(N, T, *Z.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()   # [N, C, T, h, w]
        x0, ctx = Z[:2], cond_of(caps[:2]).repeat_interleave(T, 0)   # two clips: the video U-Net against the image one per frame
        check = (vm(x0, 500, encoder_hidden_states=ctx, timestep_cond=ctx[::T, -1]).sample
                 - unet2d(x0.permute(0, 2, 1, 3, 4).flatten(0, 1), 500, encoder_hidden_states=ctx,
                          timestep_cond=ctx[:, -1]).sample.unflatten(0, (2, T)).permute(0, 2, 1, 3, 4))
    print(f"{N} clips of {T} frames; the inflated U-Net{' with ' + args.motion if args.motion else ' at step 0'} against the image"
          f" U-Net per frame: max |diff| {check.abs().max():.2e}", flush=True)
    uniq, inv = np.unique(np.asarray(caps + [""]), return_inverse=True)
    with torch.no_grad():
        states = torch.cat([cond_of(list(uniq[s:s + 256])) for s in range(0, len(uniq), 256)])
        one = probe_set()
        p_states, p_empty = cond_of(one.caption_true.tolist()), cond_of([""])
    empty_i = int(inv[-1]); inv = inv[:-1]
    y, ym = one.digit.to_numpy(), np.array([MOTION_NAMES.index(m) for m in one.motion])
    reader = WorldReader.from_pretrained()
    sch = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="sample")
    ac = sch.alphas_cumprod
    print(f"{sum(p.numel() for p in params)} trainable parameters (motion modules)", flush=True)
    opt = torch.optim.AdamW(params, args.lr, weight_decay=0.01)
    ema = [p.detach().clone() for p in params]
    rec_p = RECORDS / f"{args.record}.json"
    recs = json.loads(rec_p.read_text()) if rec_p.exists() else {}
    B, g, t0 = args.batch, torch.Generator().manual_seed(2), time.time()
    if args.motion:   # the motion modules' steps and clips a step (pass the run's --batch if its video.pt lacks it)
        saved = torch.load(args.motion, weights_only=True)
        step, B = saved["step"], saved.get("batch", B)
    elif args.init_motion:   # go on training another run's motion modules (their EMA) on this image model; their
        saved = torch.load(args.init_motion, weights_only=True)   # steps count on, at this run's batch
        with torch.no_grad():
            for p, e in zip(params, saved["ema"]):
                p.copy_(e)
        ema = [p.detach().clone() for p in params]
        step = saved["step"]
        if saved.get("batch", B) != B:
            raise SystemExit(f"--init-motion {args.init_motion} trained at batch {saved.get('batch')}: pass --batch {saved.get('batch')}")
    else:
        step = 0

    def probe():
        live = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, e in zip(params, ema):
                p.copy_(e)
        vm.eval()
        v = sample_video(vm, ae, p_states, p_empty, frames=T)
        r = reader.read(list(v))
        key = f"step-{step:06d}" if not args.motion else f"image-{ck['step']:06d}+motion-{Path(args.motion).parent.name}-{step:06d}"
        recs[key] = {"step": step, "image step": ck["step"], "prompts": len(y), "clips_seen": step * B, "frames_seen": ck["step"] * dcfg["batch"] + dcfg.get("init frames", 0),
                                   "video digit accuracy": float((r["digit"] == y).mean() * 100),
                                   "video motion accuracy": float((r["motion"] == ym).mean() * 100),
                                   "frames reading the video's digit, %": float((r["frame_probs"].argmax(-1) == r["digit"][:, None]).mean() * 100),
                                   "digit prior (most common answer), %": float(np.bincount(r["digit"]).max() / len(y) * 100),
                                   "seconds": time.time() - t0}
        print(key, recs[key], flush=True)
        write_json(rec_p, recs)
        np.save(run / f"video-probe-{key}.npy", v)
        if args.motion:
            return
        with torch.no_grad():
            for p, l in zip(params, live):
                p.copy_(l)
        vm.train()
        torch.save({"motion": [p.detach() for p in params], "ema": ema, "step": step, "batch": B}, run / "video.pt")

    start = step
    probe()   # step 0: the image model on every frame (or, with --motion, the combination alone)
    if args.motion:
        return
    while time.time() - t0 < args.minutes * 60:
        idx = torch.randint(N, (B,), generator=g)
        x = Z[idx]
        drop = torch.rand(B, generator=g) < 0.1
        cond = states[torch.as_tensor(np.where(drop.numpy(), empty_i, inv[idx.numpy()]))]
        noise = torch.randn(x.shape, generator=g)
        t = torch.randint(0, 1000, (B,), generator=g)
        a = ac[t].view(-1, 1, 1, 1, 1)
        noisy = a.sqrt() * x + (1 - a).sqrt() * noise
        pred = vm(noisy, t, encoder_hidden_states=cond.repeat_interleave(T, 0), timestep_cond=cond[:, -1]).sample
        snr = ac[t] / (1 - ac[t])
        loss = ((pred - x).pow(2).flatten(1).mean(1) * (1 + snr).clamp(max=5.0)).mean()
        for grp in opt.param_groups:
            grp["lr"] = args.lr * min(1.0, (step - start + 1) / 100)
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - min(0.995, (1 + step) / (10 + step)))
        step += 1
        if step % 50 == 0:
            print(f"video step {step} loss {loss.item():.4f} {(step - start) * B / (time.time() - t0):.1f} clips/s", flush=True)
        if step % args.probe_every == 0:
            probe()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["ae", "diff", "video", "guide", "vguide", "probe", "vprobe", "eval"])
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", default="bench/results/t2v_cpu/img-c/data.npz", help="a run's data.npz (bench/t2v_cpu.py)")
    ap.add_argument("--ae-steps", type=int, default=3000)
    ap.add_argument("--ae-ch", type=int, default=32)
    ap.add_argument("--ae-z", type=int, default=4)
    ap.add_argument("--ae-down", type=int, default=2, help="the latent is 32 / 2**down pixels a side")
    ap.add_argument("--minutes", type=float, default=40)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--probe-every", type=int, default=1000)
    ap.add_argument("--max-steps", type=int, default=10 ** 9, help="diff, guide, vguide: stop at this step")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3, help="video: the motion modules' learning rate")
    ap.add_argument("--image", help="video, vprobe, eval: the diff checkpoint to inflate (video's default: the run's diff.pt)")
    ap.add_argument("--motion", help="video: only probe, with the motion modules of this video.pt; vprobe, eval: the motion modules")
    ap.add_argument("--init-motion", help="video: start from the motion modules of this video.pt (their steps count on)")
    ap.add_argument("--fg-weight", type=float, default=1.0, help="diff: the loss weight of the glyph's latent cells")
    ap.add_argument("--attn", action="store_true", help="diff: cross-attention at every level")
    ap.add_argument("--cond", choices=["frozen", "learned"], default="frozen", help="diff: the words' vectors (LearnedWords)")
    ap.add_argument("--resume", action="store_true", help="diff: go on from the run's diff.pt")
    ap.add_argument("--init", help="diff: start from this diff.pt's EMA U-Net")
    ap.add_argument("--guide", help="probe, vprobe, eval: the guide.pt of `guide`")
    ap.add_argument("--guide-scales", type=float, nargs="+", default=[0.0, 1.0])
    ap.add_argument("--vguide", help="vprobe, eval: the vguide.pt of `vguide`")
    ap.add_argument("--vguide-scales", type=float, nargs="+", default=[0.0])
    ap.add_argument("--guide-below", type=int, default=1000, help="probe: guide only the steps at t below this")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="probe, vprobe: the sampling seeds")
    ap.add_argument("--part", type=int, default=0, help="probe, vprobe: 0 the probe's prompts, 1 the next 40 (for tuning)")
    ap.add_argument("--record", default="latent", help="the records' name (in bench/t2v_runs/probes; eval's in bench/t2v_runs)")
    ap.add_argument("--every-clip", action="store_true", help="build a missing --data from every clip of the draw of 4000 "
                    "(the world's bad clips included; claim (d)'s second arm), not from its Aes subset")
    args = ap.parse_args()
    EVERY_CLIP = args.every_clip
    if EVERY_CLIP and Path(args.data).exists():
        raise SystemExit(f"--every-clip builds a missing --data; {args.data} exists (pass a new path, or drop the flag)")
    torch.set_num_threads(args.threads)
    {"ae": train_ae, "diff": train_diff, "video": train_video, "guide": train_guide, "vguide": train_guide, "probe": probe_guided,
     "vprobe": probe_video_guided, "eval": evaluate}[args.what](args)
