"""GPU benchmark of ViCLIP training steps (default L/14): clips/s and model FLOPs utilisation (MFU).

Run on a machine with a CUDA GPU: `python bench/gpu_viclip.py --config L/14 --batch 32`. bf16 autocast, the release's
recipe (masking 0.9, text tower frozen). Model FLOPs count the vision tower forward + backward (3x forward) and the
frozen text tower forward only; matmul FLOPs (2 per multiply-add) including attention scores. Peak bf16 dense
throughput is taken from --peak-tflops (H100/H200 SXM: 989).
"""
import argparse, json, time
import torch
from internvid_nb.models.viclip import ViCLIP
from internvid_nb.training.viclip import contrastive_loss, make_optimizer, TrainConfig


def tower_flops(width, layers, tokens, extra=0):
    "Forward matmul FLOPs of a transformer tower: 24*N*W^2 per layer (qkv, out, 4x MLP) + 4*N^2*W attention."
    return layers * (24 * tokens * width ** 2 + 4 * tokens ** 2 * width) + extra


def model_flops_per_clip(m, masking):
    v, t = m.config.vision, m.config.text
    patches = v.num_frames * (v.input_resolution // v.patch_size) ** 2
    n = 1 + patches - int(masking * patches)
    embed = 2 * patches * 3 * v.patch_size ** 2 * v.width
    vis = tower_flops(v.width, v.layers, n, embed + 2 * v.width * v.output_dim)
    txt = tower_flops(t.width, t.layers, t.context_length, 2 * t.width * t.embed_dim)
    return 3 * vis + txt


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="L/14"); ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10); ap.add_argument("--peak-tflops", type=float, default=989.0)
    a = ap.parse_args()
    if not torch.cuda.is_available(): raise SystemExit("no CUDA GPU here: this benchmark needs one")
    torch.backends.cuda.matmul.allow_tf32 = True
    m = ViCLIP(a.config).cuda().train()
    opt = make_optimizer(m, TrainConfig())
    c = m.config.vision
    x = torch.randn(a.batch, c.num_frames, 3, c.input_resolution, c.input_resolution, device="cuda")
    ids = m.tokenize([f"benchmark clip {i}" for i in range(a.batch)])
    out = {"device": torch.cuda.get_device_name(), "config": a.config, "batch": a.batch, "runs": []}
    for masking in (0.9, 0.0):
        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                v, t, s = m(x, ids, masking_prob=masking)
                loss = contrastive_loss(v.float(), t.float(), s)
            loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        for _ in range(3): step()
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(a.steps): step()
        torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / a.steps
        flops = model_flops_per_clip(m, masking) * a.batch / dt
        out["runs"].append({"masking": masking, "clips_per_s": round(a.batch / dt, 1), "tflops": round(flops / 1e12, 1),
                            "mfu": round(flops / (a.peak_tflops * 1e12), 3), "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1)})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
