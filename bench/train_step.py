"""One ViCLIP training-step measurement in its own process (so that its peak memory is its own); prints JSON."""
import argparse, json, resource, time
import torch
from internvid_nb.models.viclip import ViCLIP
from internvid_nb.training.viclip import contrastive_loss, make_optimizer, TrainConfig

ap = argparse.ArgumentParser()
ap.add_argument("--config", default="tiny"); ap.add_argument("--masking", type=float, default=0.9)
ap.add_argument("--batch", type=int, default=8); ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)
m = ViCLIP(a.config).train()
c = m.config.vision
opt = make_optimizer(m, TrainConfig())            # the release's default: text tower frozen
x = torch.randn(a.batch, c.num_frames, 3, c.input_resolution, c.input_resolution)
ids = m.tokenize([f"clip number {i} of the benchmark" for i in range(a.batch)])

def step():
    v, t, s = m(x, ids, masking_prob=a.masking)
    contrastive_loss(v, t, s).backward(); opt.step(); opt.zero_grad(set_to_none=True)

step()                                            # warm-up (allocations, kernels)
t0 = time.perf_counter()
for _ in range(a.steps): step()
dt = (time.perf_counter() - t0) / a.steps
print(json.dumps({"config": a.config, "masking": a.masking, "batch": a.batch, "s_per_step": round(dt, 4),
                  "clips_per_s": round(a.batch / dt, 2), "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
