"""ViCLIP: the release's numbers, checkpoints of the released sizes, bad checkpoints, tokenizer, training (resume, DDP)."""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from internvid_nb.models.viclip import ViCLIP
from internvid_nb.models.viclip_config import viclip_config, release_state_dict_shapes, config_from_state_dict
from internvid_nb.models.checkpoint import CheckpointError
from internvid_nb.data.transforms import preprocess
from internvid_nb.models.tokenizer import clip_tokenizer
from internvid_nb.training.viclip import ClipSet, TrainConfig, train, contrastive_loss, recall_at_1, embed_set

FX = Path(__file__).parent / "fixtures" / "viclip_reference_tiny"


@pytest.fixture(scope="module")
def ref():
    sd, io = load_file(FX / "model.safetensors"), load_file(FX / "io.safetensors")
    m = ViCLIP(config_from_state_dict(sd, vision_heads=4, text_heads=2)).eval()
    m.load_state_dict(sd, strict=True)
    return m, io


def test_matches_the_release_outputs(ref):
    m, io = ref
    with torch.no_grad():
        assert (m.encode_vision(io["video"]) - io["video_features"]).abs().max() < 1e-5
        assert (m.encode_vision(io["image"]) - io["image_features"]).abs().max() < 1e-5
        assert (m.encode_text(io["token_ids"]) - io["text_features"]).abs().max() < 1e-5


def test_tokenizer_gives_clip_ids():
    r = json.loads((FX / "reference.json").read_text())
    assert clip_tokenizer()(r["strings"]).tolist() == r["token_ids"]
    ids = clip_tokenizer()(["", "a " * 200])
    assert ids[0, :3].tolist() == [49406, 49407, 0] and ids[1, -1].item() == 49407 and (ids[1] > 0).all()


def test_hf_style_folder_and_own_format(tmp_path, ref):
    m, io = ref
    (tmp_path / "hf").mkdir()
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, tmp_path / "hf" / "model.safetensors")   # -hf layout: no config.json
    hf = ViCLIP.from_pretrained(tmp_path / "hf", vision_heads=4, text_heads=2)
    m.save_pretrained(tmp_path / "ours", dtype=torch.float16)
    ours = ViCLIP.from_pretrained(tmp_path / "ours")
    with torch.no_grad():
        assert (hf.encode_vision(io["video"]) - io["video_features"]).abs().max() < 1e-5
        assert (ours.encode_text(io["token_ids"]) - io["text_features"]).abs().max() < 5e-2   # stored in half precision
    assert json.loads((tmp_path / "ours" / "config.json").read_text())["vision"]["heads"] == 4


def _random_release_sd(name):
    g = torch.Generator().manual_seed(0)
    return {k: (torch.randn(s, generator=g) * 0.02 if s else torch.tensor(0.01)) for k, s in release_state_dict_shapes(name).items()}


@pytest.mark.parametrize("name,frames", [("B/16", 8), ("L/14", 1)])
def test_released_sizes_load_strictly_and_run(tmp_path, name, frames):
    sd = _random_release_sd(name)
    p = tmp_path / "ViCLIP.pth"
    torch.save({"model": sd, "epoch": 9}, p)
    del sd
    m = ViCLIP.from_pretrained(p)
    c = m.config
    assert (c.vision.heads, c.text.heads) == ((12, 8) if name == "B/16" else (16, 12))
    with torch.no_grad():
        v = m.get_vid_features(torch.randn(1, frames, 3, 224, 224))
        t = m.get_text_features(["a person is dancing"])
    assert v.shape == t.shape == (1, c.vision.output_dim) and torch.isfinite(v).all()


def test_bad_checkpoints_say_what_is_wrong(tmp_path, ref):
    m, _ = ref
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    sd.pop("text_encoder.ln_final.bias"); sd["foo.bar"] = torch.zeros(2); sd["vision_encoder.proj"] = torch.zeros(64, 8)
    save_file(sd, tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError) as e: ViCLIP.from_pretrained(tmp_path / "bad.safetensors", config=m.config)
    msg = str(e.value)
    assert "text_encoder.ln_final.bias" in msg and "foo.bar" in msg and "vision_encoder.proj: checkpoint [64, 8] vs model [64, 32]" in msg
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"): ViCLIP.from_pretrained(tmp_path / "junk.pth")
    with pytest.raises(CheckpointError, match="not found|no such"): ViCLIP.from_pretrained(tmp_path / "none.pth")
    marker = tmp_path / "pwned"
    torch.save({"model": {"w": torch.zeros(1)}, "cfg": _Evil(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="refused to load.*posix.system"): ViCLIP.from_pretrained(tmp_path / "evil.pth")
    assert not marker.exists()                                       # the payload never ran


class _Evil:
    "A pickle payload that would create a file if it were ever unpickled."
    def __init__(self, path): self.path = path
    def __reduce__(self): return (os.system, (f"touch {self.path}",))


def test_wrong_inputs_are_named():
    m = ViCLIP("tiny")
    with pytest.raises(ValueError, match="64 x 64"): m.encode_vision(torch.randn(1, 8, 3, 60, 64))
    with pytest.raises(ValueError, match="set_num_frames"): m.encode_vision(torch.randn(1, 3, 3, 64, 64))
    with pytest.raises(ValueError, match=r"\[B, T, 3, H, W\]"): m.encode_vision(torch.randn(1, 8, 4, 64, 64))
    with pytest.raises(ValueError, match="uint8"): preprocess(np.zeros((4, 8, 8, 3), np.float32))


def test_masking_keeps_the_share_and_order():
    from internvid_nb.models.viclip import mask_tokens
    x = torch.arange(40.).view(1, 40, 1).expand(3, 40, 2)
    y = mask_tokens(x, 0.9)
    assert y.shape == (3, 4, 2) and (y[:, 1:, 0] > y[:, :-1, 0]).all()


@pytest.fixture(scope="module")
def small_set():
    from internvid_nb.world.sampleworld import load_world
    w = load_world()
    return ClipSet(w.clips[w.clips.split == "train"].head(16), 64, hflip=False)


CFG = dict(epochs=2, batch_size=8, lr=1e-3, warmup_epochs=0.5, masking_prob=0.5, unmasked_epochs=0.5,
           freeze_text=False, hflip=False, log_every=1, ckpt_every=2)


def test_resume_continues_the_same_run(tmp_path, small_set):
    cfg = TrainConfig(**CFG)
    torch.manual_seed(0); straight = train(ViCLIP("tiny"), small_set, cfg, tmp_path / "a", log=lambda *a: None)
    torch.manual_seed(0); train(ViCLIP("tiny"), small_set, cfg, tmp_path / "b", max_steps=3, log=lambda *a: None)
    resumed = train(ViCLIP("tiny"), small_set, cfg, tmp_path / "b", log=lambda *a: None)   # fresh model: all from last.pt
    assert [r["step"] for r in resumed] == [1, 2, 3, 4, 5]          # 2 epochs of 2 steps, then 1 unmasked step
    np.testing.assert_allclose([r["loss"] for r in resumed], [r["loss"] for r in straight], rtol=1e-5)
    assert straight[-1]["masking"] == 0.0 and straight[0]["masking"] == 0.5
    st = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert st["step"] == 5


def test_gradient_accumulation_runs_the_same_schedule(small_set):
    torch.manual_seed(0)
    h = train(ViCLIP("tiny"), small_set, TrainConfig(**{**CFG, "grad_accum": 2}), None, log=lambda *a: None)
    assert [r["step"] for r in h] == [1, 2, 3, 4, 5] and all(np.isfinite(r["loss"]) for r in h)
    with pytest.raises(ValueError, match="must divide"): train(ViCLIP("tiny"), small_set, TrainConfig(**{**CFG, "grad_accum": 3}), None)


def test_ddp_on_two_processes_matches_one(tmp_path, small_set):
    cfg = TrainConfig(**CFG)
    torch.manual_seed(0); single = [r["loss"] for r in train(ViCLIP("tiny"), small_set, cfg, None, log=lambda *a: None)]
    out = tmp_path / "ddp.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                        str(Path(__file__).parent / "helpers" / "ddp_train.py"), str(out), json.dumps(CFG)],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    np.testing.assert_allclose(json.loads(out.read_text()), single, rtol=1e-4, atol=1e-5)


def test_training_learns_on_the_sample_world(small_set):
    torch.manual_seed(0)
    m = ViCLIP("tiny")
    before = recall_at_1(*embed_set(m, small_set), small_set.captions)
    hist = train(m, small_set, TrainConfig(**{**CFG, "epochs": 30, "masking_prob": 0.0, "unmasked_epochs": 0, "ckpt_every": 10**6}),
                 None, log=lambda *a: None)
    after = recall_at_1(*embed_set(m, small_set), small_set.captions)
    last = np.mean([r["loss"] for r in hist[-4:]])
    assert last < 0.5 * hist[0]["loss"] and after["t2v_r1"] > before["t2v_r1"] + 0.3, (hist[0]["loss"], last, before, after)


def test_embedded_viclip_tiny_retrieves_val_clips():
    from internvid_nb.world.sampleworld import load_world
    w = load_world()
    m = ViCLIP.from_pretrained("viclip-tiny")
    val = ClipSet(w.clips[w.clips.split == "val"], 64)
    r = recall_at_1(*embed_set(m, val), val.captions)
    assert r["t2v_r1"] >= 0.8, r


def test_cli_trains_and_saves(tmp_path):
    from internvid_nb.training.viclip import main
    from internvid_nb.world.sampleworld import load_world
    world = load_world()
    world.clips[world.clips.split == "train"].to_parquet(tmp_path / "clips.parquet")
    assert main(["--clips", str(tmp_path / "clips.parquet"), "--out", str(tmp_path), "--epochs", "0.5", "--batch-size", "16", "--max-steps", "2", "--train-text", "--no-hflip"]) == 0
    m = ViCLIP.from_pretrained(tmp_path / "final")
    assert m.config.name == "viclip-tiny" and (tmp_path / "last.pt").exists()


def test_a_checkpoint_of_other_settings_or_clips_is_refused_and_logging_knobs_may_change(tmp_path, small_set):
    cfg = TrainConfig(**CFG)
    quiet = lambda *a: None
    train(ViCLIP("tiny"), small_set, cfg, tmp_path / "r", max_steps=2, log=quiet)
    with pytest.raises(CheckpointError, match=r"lr: 0\.001 -> 0\.0001"):
        train(ViCLIP("tiny"), small_set, TrainConfig(**{**CFG, "lr": 1e-4}), tmp_path / "r", log=quiet)
    other = ClipSet(small_set.table.assign(caption=small_set.table.caption + " again"), 64, frames=small_set.frames, hflip=False)
    with pytest.raises(CheckpointError, match="training clips: "): train(ViCLIP("tiny"), other, cfg, tmp_path / "r", log=quiet)
    h = train(ViCLIP("tiny"), small_set, TrainConfig(**{**CFG, "log_every": 2}), tmp_path / "r", max_steps=3, log=quiet)
    assert h[-1]["step"] == 3                                                   # resumed at step 2
