"""Run by test_viclip under torch.distributed.run: a short tiny-ViCLIP training on gloo; rank 0 writes its losses."""
import json, sys
import torch, torch.distributed as dist
torch.set_num_threads(1)
from internvid_nb.training.viclip import ClipSet, TrainConfig, train
from internvid_nb.models.viclip import ViCLIP
from internvid_nb.world.sampleworld import load_world

dist.init_process_group("gloo")
w = load_world()
data = ClipSet(w.clips[w.clips.split == "train"].head(16), 64, hflip=False)
cfg = TrainConfig(**json.loads(sys.argv[2]))
torch.manual_seed(0)
hist = train(ViCLIP("tiny"), data, cfg, None, log=lambda *a: None)
if dist.get_rank() == 0:
    with open(sys.argv[1], "w") as f: f.write(json.dumps([h["loss"] for h in hist]))
dist.destroy_process_group()
