"""Text-to-video: seeded pipeline, exact resume, save/load, metrics against their reference rows, extractors, gallery."""
from dataclasses import replace
import numpy as np
import pytest
import torch
from internvid_nb.models.t2v import T2V_CONFIGS, T2VConfig, TextToVideo, video_tensor, patchify, unpatchify
from internvid_nb.generation.train import T2VTrainConfig, train_t2v
from internvid_nb.evaluation.generation_metrics import GenerationMetrics, TorchScriptFeatures, frechet_distance, inception_score, metrics_table
from internvid_nb.world.generation import DigitFeatures
from internvid_nb.ui.generation import Gallery

P = ["a red digit 1 moves from left to right on a black background", "a blue digit 7 shrinks on a gray background"]


@pytest.fixture(scope="module")
def metrics():
    return GenerationMetrics(DigitFeatures(), rounds=20)


@pytest.fixture(scope="module")
def real(world):
    from internvid_nb.data.videoio import read_frames
    clips = world.clips                          # 352 clips: halves of 176, more than the 64-d video features need
    return [video_tensor(read_frames(p, range(24)), 32, 8) for p in clips.path], clips.caption_true.tolist()


def test_pipeline_is_seeded_and_batch_independent():
    pipe = TextToVideo("tiny")
    a = pipe(P, steps=2, seed=3, batch_size=2)
    b = pipe(P, steps=2, seed=3, batch_size=1)
    for x, y in zip(a, b):                       # the same noise per prompt; batched kernels round differently by a few ulps
        d = np.abs(x.astype(int) - y.astype(int))
        assert d.max() <= 3 and d.mean() < 0.1, (d.max(), d.mean())
    assert np.array_equal(a[1], pipe(P, steps=2, seed=3, batch_size=2)[1])          # and exactly repeatable
    assert not np.array_equal(a[0], pipe(P, steps=2, seed=4)[0])
    assert a[0].shape == (8, 32, 32, 3) and a[0].dtype == np.uint8


def test_patchify_is_exactly_invertible():
    x = torch.randn(2, 3, 4, 16, 16)
    assert patchify(x, 4).shape == (2, 48, 4, 4, 4)
    assert torch.equal(unpatchify(patchify(x, 4), 4), x)


def test_training_learns_and_resumes_exactly(tmp_path):
    vids = np.zeros((4, 8, 32, 32, 3), np.uint8); vids[:2, :, 8:24, 8:24] = 255       # two clips with a white square
    caps = [P[0], P[0], P[1], P[1]]
    c = T2VTrainConfig(steps=4, batch_size=2, ckpt_every=1, log_every=1, warmup=1, ema=0.9, cosine=True, snr_gamma=5)
    torch.manual_seed(0); whole = TextToVideo("tiny")
    torch.manual_seed(0); first = TextToVideo("tiny")
    train_t2v(whole, caps, vids, c, tmp_path/"whole", log=lambda s: None)
    train_t2v(first, caps, vids, c, tmp_path/"split", log=lambda s: None, max_steps=2)         # "killed" after step 2
    torch.manual_seed(1); second = TextToVideo("tiny")                                            # a fresh process
    h = train_t2v(second, caps, vids, c, tmp_path/"split", log=lambda s: None)
    assert [r["step"] for r in h] == [1, 2, 3, 4]
    for (k, a), b in zip(whole.unet.state_dict().items(), second.unet.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k                     # the averaged weights too: the EMA is checkpointed
    raw = torch.load(tmp_path/"whole"/"last.pt", weights_only=True)
    assert len(raw["ema"]) == len(list(whole.unet.parameters()))
    assert any(not torch.allclose(raw["unet"][k], v) for k, v in whole.unet.state_dict().items())   # the U-Net ends on the EMA
    assert h[-1]["lr"] == pytest.approx(0.25 * c.lr)                   # cosine: step 4 of 4 after 1 warm-up step
    # a time budget stops the run with a checkpoint
    h = train_t2v(TextToVideo("tiny"), caps, vids, c, tmp_path/"late", log=lambda s: None, max_seconds=0)
    assert h[-1]["step"] == 1 and torch.load(tmp_path/"late"/"last.pt", weights_only=True)["step"] == 1
    # learning: the loss on the fixed set falls over 40 steps
    torch.manual_seed(0); p = TextToVideo("tiny")
    h = train_t2v(p, caps, vids, T2VTrainConfig(steps=40, batch_size=4, log_every=10, warmup=5, lr=1e-3), log=lambda s: None)
    assert h[-1]["loss"] < 0.5 * h[0]["loss"]
    with pytest.raises(ValueError, match="captions"): train_t2v(p, caps[:3], vids, c)


def test_joint_image_video_training_takes_single_frames_and_resumes_exactly(tmp_path):
    vids = np.zeros((4, 8, 32, 32, 3), np.uint8); vids[:2, :, 8:24, 8:24] = 255
    vids[:, :, 0, 0] = np.arange(8)[None, :, None] * 30                   # each frame of a clip differs
    caps = [P[0], P[0], P[1], P[1]]
    c = T2VTrainConfig(steps=4, batch_size=2, ckpt_every=1, log_every=1, warmup=1, ema=0.9, image_steps=1)
    torch.manual_seed(0); whole = TextToVideo("tiny")
    seen = []
    whole.unet.register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape)))
    train_t2v(whole, caps, vids, c, tmp_path/"whole", log=lambda s: None)
    # steps 1 and 3: one frame of each of batch_size * frames clips; steps 2 and 4: batch_size whole clips
    assert seen == [(16, 48, 1, 8, 8), (2, 48, 8, 8, 8)] * 2, seen
    torch.manual_seed(0); first = TextToVideo("tiny")
    train_t2v(first, caps, vids, c, tmp_path/"split", log=lambda s: None, max_steps=1)   # killed after an image step
    torch.manual_seed(1); second = TextToVideo("tiny")
    h = train_t2v(second, caps, vids, c, tmp_path/"split", log=lambda s: None)
    assert [r["step"] for r in h] == [1, 2, 3, 4]
    for (k, a), b in zip(whole.unet.state_dict().items(), second.unet.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    # a run saved with image steps is not resumed without them, nor one saved before the setting existed with them
    with pytest.raises(Exception, match="image_steps"):
        train_t2v(TextToVideo("tiny"), caps, vids, replace(c, image_steps=0), tmp_path/"whole", log=lambda s: None)
    old = torch.load(tmp_path/"split"/"last.pt", weights_only=True)
    settings = __import__("json").loads(old["train_config"]); del settings["image_steps"]
    old["train_config"] = __import__("json").dumps(settings)
    torch.save(old, tmp_path/"split"/"last.pt")
    with pytest.raises(Exception, match="image_steps"):
        train_t2v(TextToVideo("tiny"), caps, vids, replace(c, steps=6), tmp_path/"split", log=lambda s: None)
    h = train_t2v(TextToVideo("tiny"), caps, vids, replace(c, steps=6, image_steps=0), tmp_path/"split", log=lambda s: None)
    assert h[-1]["step"] == 6                                           # read as 0: resumed


def test_an_image_phase_steps_as_a_one_frame_run_and_inflates_to_video(tmp_path, monkeypatch):
    from internvid_nb.models.t2v import inflate_temporal
    from internvid_nb.world.generation import train_t2v_tiny
    vids = np.zeros((4, 8, 32, 32, 3), np.uint8); vids[:2, :, 8:24, 8:24] = 255
    vids[:, :, 0, :] = np.arange(8)[None, :, None, None] * 30            # each frame of a clip differs
    caps = [P[0], P[0], P[1], P[1]]
    c = T2VTrainConfig(steps=3, batch_size=4, ckpt_every=1, log_every=1, warmup=1, ema=0.9, images=True)
    torch.manual_seed(0); img = TextToVideo("tiny")
    seen = []
    img.unet.register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape)))
    train_t2v(img, caps, vids, c, tmp_path/"img", log=lambda s: None)
    assert seen == [(4, 48, 1, 8, 8)] * 3, seen
    # the same steps as a one-frame model trained on the 32 frames as clips (frame j % 8 of clip j // 8)
    torch.manual_seed(0); one = TextToVideo(replace(T2V_CONFIGS["tiny"], frames=1))
    train_t2v(one, [x for x in caps for _ in range(8)], vids.reshape(32, 1, 32, 32, 3), replace(c, images=False),
              tmp_path/"one", log=lambda s: None)
    for (k, a), b in zip(img.unet.state_dict().items(), one.unet.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="use one"):
        train_t2v(img, caps, vids, replace(c, image_steps=1), tmp_path/"both", log=lambda s: None)
    with pytest.raises(Exception, match="images"):   # an image run is not resumed as a video run
        train_t2v(TextToVideo("tiny"), caps, vids, replace(c, images=False), tmp_path/"img", log=lambda s: None)
    # inflated, the U-Net gives each of 8 equal frames the one-frame output; before, the temporal convolutions'
    # untrained side taps mixed the frames
    x = torch.randn(2, 48, 1, 8, 8); t = torch.tensor([700, 200]); ctx = img.encode(P)
    with torch.no_grad():
        one_frame = img.unet(x, t, encoder_hidden_states=ctx).sample
        before = img.unet(x.repeat(1, 1, 8, 1, 1), t, encoder_hidden_states=ctx).sample
        assert inflate_temporal(img.unet) == 4 * sum(type(m).__name__ == "TemporalConvLayer" for m in img.unet.modules())
        after = img.unet(x.repeat(1, 1, 8, 1, 1), t, encoder_hidden_states=ctx).sample
    assert (before - one_frame).abs().max() > 1e-3
    assert torch.allclose(after, one_frame.expand_as(after), atol=1e-5)
    # train_t2v_tiny inflates between an image phase and a video phase
    import json
    import internvid_nb.world.generation as wg
    calls = []
    monkeypatch.setattr(wg, "inflate_temporal", lambda u: calls.append(u) or inflate_temporal(u))
    recipe = (replace(c, steps=2, batch_size=8), T2VTrainConfig(steps=2, batch_size=2, warmup=1, ckpt_every=1, log_every=1))
    pipe = train_t2v_tiny(tmp_path/"tiny", n=12, recipe=recipe, log=lambda s: None, device="cpu")
    assert len(calls) == 1 and calls[0] is pipe.unet
    card = json.loads((tmp_path/"tiny"/"training.json").read_text())
    assert [p["recipe"]["images"] for p in card["phases"]] == [True, False]


def test_save_and_load_give_the_same_videos(tmp_path):
    pipe = TextToVideo("tiny")
    pipe.save_pretrained(tmp_path/"m")
    again = TextToVideo.from_pretrained(tmp_path/"m")
    assert np.array_equal(pipe(P[:1], steps=2)[0], again(P[:1], steps=2)[0])
    with pytest.raises(FileNotFoundError, match="t2v.json"): TextToVideo.from_pretrained(tmp_path/"nothing")


def test_condition_with_token_embeddings_trains_saves_and_loads(tmp_path):
    "tiny-edm hands the U-Net the final text states followed by the input token embeddings, which keep every digit word."
    pipe = TextToVideo("tiny-edm")
    states = pipe.encode(P)
    base = TextToVideo("tiny").encode(P)                               # the final states alone
    L = base.shape[1]
    assert states.shape == (2, 2 * L, base.shape[2]) and torch.equal(states[:, :L], base)
    d1, d7 = pipe.encode(["a red digit 1 moves up on a black background", "a red digit 7 moves up on a black background"])
    assert not torch.equal(d1[L:], d7[L:]) and torch.equal(d1[L:L + 4], d7[L:L + 4])    # only the digit's own embedding differs there
    vids = np.zeros((2, 8, 32, 32, 3), np.uint8); vids[0, :, 8:24, 8:24] = 255
    h = train_t2v(pipe, P, vids, T2VTrainConfig(steps=2, batch_size=2, log_every=1), log=lambda s: None)
    assert len(h) == 2 and np.isfinite(h[-1]["loss"])
    pipe.save_pretrained(tmp_path/"m")
    again = TextToVideo.from_pretrained(tmp_path/"m")
    assert again.config.text_tokens == "final+embeddings" and again.config.sigma_data == 0.5
    assert np.array_equal(pipe(P[:1], steps=2)[0], again(P[:1], steps=2)[0])
    with pytest.raises(ValueError, match="text tokens"): TextToVideo(__import__("dataclasses").replace(pipe.config, text_tokens="mean"))


def test_condition_with_loud_words_and_a_pooled_bag_of_words(tmp_path):
    "final+words: the token embeddings scaled to the final states' norm, then their mean over the words, which `pooled` adds to the timestep embedding."
    cfg = replace(T2V_CONFIGS["tiny"], text_tokens="final+words", pooled=True)
    pipe = TextToVideo(cfg)
    base = TextToVideo("tiny").encode(P)
    L = base.shape[1]
    s = pipe.encode(["a red digit 1 moves up on a black background", "a red digit 7 moves up on a black background"])
    assert s.shape == (2, 2 * L + 1, base.shape[2])
    assert torch.allclose(s[:, L:2 * L].norm(dim=-1).mean(1), s[:, :L].norm(dim=-1).mean(1))     # as loud as the context
    assert (s[0, -1] - s[1, -1]).norm() > 0.2 * s[0, -1].norm()                                    # the bag tells 1 from 7
    x, t = torch.randn(1, 48, 8, 8, 8), torch.tensor([500])
    seen = []
    hook = pipe.unet.time_embedding.cond_proj.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    with torch.no_grad():
        pipe.denoise(x, t, s[:1])
        hook.remove()
        assert len(seen) == 1 and torch.equal(seen[0], s[:1, -1])                                  # the bag reaches the timestep embedding
        plain = pipe.unet(x, t, encoder_hidden_states=s[:1]).sample                                 # the bag as a cross-attention token only
        assert not torch.allclose(pipe.denoise(x, t, s[:1]), plain)
        pipe.unet.time_embedding.cond_proj.weight.zero_()                                           # as a warm start begins
        assert torch.equal(pipe.denoise(x, t, s[:1]), plain)
    assert TextToVideo(replace(cfg, pooled=False)).unet.time_embedding.cond_proj is None
    vids = np.zeros((2, 8, 32, 32, 3), np.uint8); vids[0, :, 8:24, 8:24] = 255
    h = train_t2v(pipe, P, vids, T2VTrainConfig(steps=2, batch_size=2, log_every=1), log=lambda m: None)
    assert np.isfinite(h[-1]["loss"]) and pipe.unet.time_embedding.cond_proj.weight.abs().sum() > 0  # it learns
    pipe.save_pretrained(tmp_path/"m")
    again = TextToVideo.from_pretrained(tmp_path/"m")
    assert again.config.pooled and torch.equal(again.unet.time_embedding.cond_proj.weight, pipe.unet.time_embedding.cond_proj.weight)
    assert np.array_equal(pipe(P[:1], steps=2)[0], again(P[:1], steps=2)[0])
    with pytest.raises(ValueError, match="pooled"): TextToVideo(replace(cfg, text_tokens="final+embeddings"))
    with pytest.raises(ValueError, match="disagrees"): TextToVideo(replace(cfg, pooled=False, text_tokens="final"), unet=again.unet)


def test_digit_classifier_reads_rendered_digits(metrics):
    from internvid_nb.world.render import render_clip, make_object
    rng = np.random.default_rng(1)
    digits = np.arange(40) % 10
    vids = [video_tensor(render_clip([make_object(rng, int(d), "yellow", "still")], "navy"), 32, 8) for d in digits]
    _, p = metrics.frame_features(np.concatenate(vids))
    acc = (p.reshape(40, 8, 10).mean(1).argmax(1) == digits).mean()
    assert metrics.frame_features.test_accuracy > 0.9 and acc > 0.5, acc


def test_metrics_and_reference_rows(metrics, real):
    vids, caps = real
    rows = metrics.reference_rows(vids, caps)
    t = {(r["set"].split(": ")[1], r["metric"]): r for r in rows}
    # shuffling frames in time leaves the frame set, so frame-wise FID is unchanged, but FVD sees it
    assert t[("real vs time-shuffled real", "FID")]["value"] == pytest.approx(t[("real vs real (halves)", "FID")]["value"])
    assert t[("real vs time-shuffled real", "FVD")]["value"] > t[("real vs real (halves)", "FVD")]["value"]
    for m in ("FID", "FVD"):
        assert t[("real vs noise", m)]["value"] > 3 * t[("real vs real (halves)", m)]["value"]
    assert t[("real vs real (halves)", "CLIPSIM")]["value"] > t[("real vs noise", "CLIPSIM")]["value"]
    assert t[("real vs real (halves)", "IS")]["value"] > t[("real vs noise", "IS")]["value"]
    for r in rows:
        assert r["ci_low"] <= r["value"] <= r["ci_high"], r       # Fréchet intervals are corrected for the bootstrap's bias
        assert r["extractor"] and r["n"] == len(vids) // 2
    assert not any(r["warning"] for r in rows if r["metric"] == "FVD")        # 176 videos for 64-d features
    few = metrics.compare(vids[:20], vids[20:40])
    assert [r["warning"] != "" for r in few] == [False, True, True]          # FID has 160 frames; FVD 20 videos; IS < 50
    assert metrics_table(rows).shape == (3, 4)
    with pytest.raises(ValueError, match="prompts"): metrics.compare(vids, vids, caps[:3])


def test_frechet_and_is_values():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4))
    assert frechet_distance(a, b) < 0.05 and frechet_distance(a, b + 1) == pytest.approx(4, rel=0.1)
    assert inception_score(np.eye(10)) == pytest.approx(10) and inception_score(np.full((3, 10), .1)) == pytest.approx(1)
    with pytest.raises(ValueError, match="NaN"): frechet_distance(np.full((3, 2), np.nan), a[:3, :2])


def test_torchscript_detector_is_loaded_from_a_local_file(tmp_path):
    class Inception(torch.nn.Module):       # StyleGAN3's Inception TorchScript: features, or softmax probabilities
        def forward(self, x: torch.Tensor, return_features: bool = False, no_output_bias: bool = False) -> torch.Tensor:
            f = x.float().mean(dim=(2, 3))
            return f if return_features else torch.softmax(torch.cat([f, -f], 1) / 100, 1)
    class Logits(torch.nn.Module):          # a detector that returns logits
        def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            f = x.float().mean(dim=(2, 3))
            return f if return_features else torch.cat([f, -f], 1) / 100
    torch.jit.script(Inception()).save(str(tmp_path/"inception.pt")); torch.jit.script(Logits()).save(str(tmp_path/"logits.pt"))
    x = np.stack([np.full((16, 16, 3), 10, np.uint8), np.full((16, 16, 3), 200, np.uint8)])
    f, p = TorchScriptFeatures(tmp_path/"inception.pt")(x)
    want = torch.softmax(torch.tensor([[10.] * 3 + [-10.] * 3, [200.] * 3 + [-200.] * 3]) / 100, 1).numpy()
    assert f.shape == (2, 3) and np.allclose(p, want, atol=1e-6)          # probabilities pass through, not softmaxed twice
    _, p = TorchScriptFeatures(tmp_path/"logits.pt")(x)
    assert np.allclose(p, want, atol=1e-6)                                  # logits are turned into probabilities
    with pytest.raises(FileNotFoundError): TorchScriptFeatures(tmp_path/"missing.pt")


def test_gallery_escapes_prompts_and_keeps_history(tmp_path):
    g = Gallery(TextToVideo("tiny"), GenerationMetrics(DigitFeatures(), rounds=0), folder=tmp_path)
    g.prompt.value = 'a <img src=x onerror=alert(1)> digit\n"quoted" & more'; g.steps.value = 2
    g.generate(); g.generate()
    assert "<img src=x" not in g.view.value and "&lt;img src=x" in g.view.value
    assert len(g.pick.options) == 2 and len(list(tmp_path.glob("gen*.gif"))) == 4 and len(list(tmp_path.glob("gen*.json"))) == 2
    first = (tmp_path/"gen0000_0.gif").read_bytes()
    g2 = Gallery(TextToVideo("tiny"), GenerationMetrics(DigitFeatures(), rounds=0), folder=tmp_path)       # a later session: history reloaded
    assert [e["id"] for e in g2.history] == [0, 1] and g2.history[0]["gifs"][0] == first
    assert [v for _, v in g2.pick.options] == [0, 1]                                      # and browsable before any Generate
    import json
    bad = json.loads((tmp_path/"gen0001.json").read_text()) | {"id": 7, "steps": "<script>alert(1)</script>"}
    (tmp_path/"gen0007.json").write_text(json.dumps(bad)); (tmp_path/"gen0007_0.gif").write_bytes(first); (tmp_path/"gen0007_1.gif").write_bytes(first)
    with pytest.warns(UserWarning, match="gen0007.json: missing or malformed steps"):
        assert [e["id"] for e in Gallery(TextToVideo("tiny"), GenerationMetrics(DigitFeatures(), rounds=0), folder=tmp_path).history] == [0, 1]
    (tmp_path/"gen0007.json").unlink()
    g2.steps.value = 2; e = g2.generate()
    assert e["id"] == 2 and (tmp_path/"gen0002.json").exists() and (tmp_path/"gen0000_0.gif").read_bytes() == first


def test_permutation_chance_judges_a_biased_classifier_by_its_bias():
    from internvid_nb.evaluation.generation_metrics import permutation_chance
    y = np.arange(300) % 3
    chance, p = permutation_chance(np.zeros(300, int), y)      # always class 0: 33% right, exactly its own chance
    assert abs(chance - 100 / 3) < 0.5 and p > 0.5
    chance, p = permutation_chance(y, y, rounds=2000)
    assert abs(chance - 100 / 3) < 2 and p < 0.001


def test_loss_weights_stay_bounded_and_resume_refuses_other_settings(tmp_path):
    vids = np.random.default_rng(0).integers(0, 256, (4, 8, 32, 32, 3), dtype=np.uint8)
    for pt in ("epsilon", "v_prediction", "sample"):
        p = TextToVideo("tiny"); p.config.prediction_type = pt
        h = train_t2v(p, P * 2, vids, T2VTrainConfig(steps=3, batch_size=4, log_every=1, warmup=0, snr_gamma=5), log=lambda s: None)
        assert all(np.isfinite(r["loss"]) and r["loss"] < 10 for r in h), (pt, h)      # min-SNR weights are at most 1 for eps / v
    c = T2VTrainConfig(steps=2, batch_size=4, ckpt_every=1, log_every=1)
    train_t2v(TextToVideo("tiny"), P * 2, vids, c, tmp_path, log=lambda s: None)
    with pytest.raises(ValueError, match="lr: 0.0003 -> 0.001"):
        train_t2v(TextToVideo("tiny"), P * 2, vids, T2VTrainConfig(steps=4, batch_size=4, lr=1e-3), tmp_path, log=lambda s: None)
    h = train_t2v(TextToVideo("tiny"), P * 2, vids, T2VTrainConfig(steps=3, batch_size=4, ckpt_every=1, log_every=1), tmp_path, log=lambda s: None)
    assert h[-1]["step"] == 3                                                           # more steps: a plain continuation


def test_save_pretrained_swaps_the_whole_folder(tmp_path):
    p = TextToVideo("tiny")
    p.save_pretrained(tmp_path/"m", half=True)
    (tmp_path/"m"/"training.json").write_text("{}")
    p.save_pretrained(tmp_path/"m")
    assert sorted(f.name for f in (tmp_path).iterdir()) == ["m"]                      # no temporary folders left
    q = TextToVideo.from_pretrained(tmp_path/"m")
    assert (tmp_path/"m"/"training.json").exists() and next(q.unet.parameters()).dtype == torch.float32
    assert np.array_equal(q(P[:1], steps=2)[0], p(P[:1], steps=2)[0])


def _border(v):
    return np.median(np.concatenate([v[:, 0], v[:, -1], v[:, :, 0], v[:, :, -1]], 1).reshape(-1, 3).astype(float), 0)


def test_sampling_starts_from_pure_noise_and_the_background_follows_the_prompt():
    # DDIM with 'leading' spacing starts at t=950, where the shipped model still reads the (absent) image from the
    # noise and draws every background gray; from t=999 the prompt decides it.
    pipe = TextToVideo.from_pretrained("t2v-tiny")
    s = pipe.scheduler("ddim"); s.set_timesteps(20)
    assert int(s.timesteps[0]) == pipe.config.train_timesteps - 1
    words = ["gray", "navy", "brown", "black"]
    v = pipe([f"a yellow digit 3 stays still on a {w} background" for w in words], steps=10, seed=0)
    gray, navy, brown, black = (_border(x) for x in v)
    assert navy[2] > navy[0] + 40 and brown[0] > brown[2] + 30, (navy, brown)
    assert black.max() < 40 < gray.min() and np.ptp(gray) < 15, (black, gray)


def test_background_accuracy_scores_the_border_colour():
    from internvid_nb.world.generation import background_accuracy
    cols = {"gray": (94, 93, 94), "navy": (19, 30, 88), "brown": (77, 47, 24), "black": (2, 1, 2)}
    prompts = [f"a red digit 1 stays still on a {w} background" for w in cols] * 2
    real = [np.broadcast_to(np.array(cols[p.split()[-2]], np.uint8), (8, 32, 32, 3)).copy() for p in prompts]
    for r in real: r[:, 12:20, 12:20] = (200, 0, 0)                    # the digit does not count
    got = background_accuracy(real, [np.full((8, 32, 32, 3), 94, np.uint8)] * len(prompts), prompts)
    assert got["real background accuracy"] == 100.0 and got["generated background accuracy"] == 25.0
    assert got["real colour accuracy"] == 100.0 and got["generated colour accuracy"] == 0.0   # no digit drawn: "none"
    assert got["generated background chance"] == pytest.approx(25.0)      # one word per video, 4 words evenly
    prompts = [f"a {c} digit 1 stays still on a black background" for c in ("red", "blue")] * 2
    real = [np.zeros((8, 32, 32, 3), np.uint8) for _ in prompts]
    for r, p in zip(real, prompts): r[:, 12:20, 12:20] = (230, 40, 40) if "red" in p else (60, 110, 250)
    got = background_accuracy(real, [v.copy() for v in real[::-1]], prompts)   # each drawn in the other colour
    assert got["real colour accuracy"] == 100.0 and got["generated colour accuracy"] == 0.0
    assert background_accuracy(real, real, ["digit 1 stays still"] * len(real)) == {}   # no colour words


def test_editing_a_video_keeps_it_in_proportion_to_the_strength(real):
    pipe = TextToVideo.from_pretrained("t2v-tiny")
    vids, caps = real[0][:4], real[1][:4]
    diff = lambda a, b: np.mean([np.abs(x.astype(float) - y.astype(float)).mean() for x, y in zip(a, b)])
    near = pipe(caps, steps=10, seed=0, videos=vids, strength=0.1)        # one step from t = 99
    mid = pipe(caps, steps=10, seed=0, videos=vids, strength=0.6)
    whole = pipe(caps, steps=10, seed=0, videos=vids, strength=1.0)         # strength 1: the videos are not read
    assert all(np.array_equal(a, b) for a, b in zip(whole, pipe(caps, steps=10, seed=0)))
    assert diff(near, vids) < diff(mid, vids) < diff(whole, vids), (diff(near, vids), diff(mid, vids), diff(whole, vids))
    assert diff(near, vids) < 0.5 * diff(whole, vids) and diff(near, vids) < 6   # in 0..255: a light touch
    other = [np.asarray(v)[:, ::2, ::2] for v in vids]                      # any size and length is resampled
    assert pipe(caps[:1], steps=2, videos=[np.repeat(other[0], 3, 0)], strength=0.5)[0].shape == (8, 32, 32, 3)
    with pytest.raises(ValueError, match="video 1"):
        pipe(caps[:2], steps=2, videos=[vids[0], vids[1].astype(np.float32)], strength=0.5)
    with pytest.raises(ValueError, match="2 videos for 3 prompts"):
        pipe(caps[:3], steps=2, videos=vids[:2], strength=0.5)
    with pytest.raises(ValueError, match="strength"):
        pipe(caps[:1], steps=2, videos=vids[:1], strength=0)


def test_fair_floor_same_shapes_and_a_left_alone_seed(metrics, real):
    vids, caps = real
    vids, caps = vids[:120], caps[:120]
    rows = metrics.reference_rows(vids, caps, fake=vids, name="copy")                  # a "model" that returns the real clips
    t = {(r["set"], r["metric"]): r["value"] for r in rows}
    assert t[("copy (halves, as the floor)", "FID")] == pytest.approx(t[("reference: real vs real (halves)", "FID")])
    assert {r["n"] for r in rows} == {60}
    with pytest.raises(ValueError, match="generated video 1: shape"):
        metrics.compare(vids[:4], [vids[0], np.concatenate([vids[1], vids[1]])])
    with pytest.raises(ValueError, match="real video 2"):
        metrics.compare([vids[0], vids[1], vids[2].astype(np.float32)], vids[:3])
    torch.manual_seed(123); a = torch.rand(3)
    torch.manual_seed(123); DigitFeatures(epochs=2); b = torch.rand(3)
    assert torch.equal(a, b)                                            # building the metrics does not reseed the caller
    assert frechet_distance(np.arange(10.)[:, None], np.arange(10.)[:, None] + 2) == pytest.approx(4)   # 1-d features


def test_train_set_leaves_out_bad_clips_by_name():
    import pandas as pd
    from internvid_nb.generation.train import t2v_train_set
    from internvid_nb.models.t2v import T2VConfig
    t = pd.DataFrame({"clip_id": ["ok", "grey", "gone"], "path": ["-", "-", "/no/such.mp4"], "caption": ["a", "b", "c"]})
    frames = [np.zeros((8, 32, 32, 3), np.uint8), np.zeros((8, 32, 32), np.uint8), None]
    with pytest.warns(UserWarning, match="clip grey: frames of shape"):
        caps, v = t2v_train_set(t[:2], T2VConfig(), frames[:2])
    assert caps == ["a"] and v.shape == (1, 8, 32, 32, 3)
    with pytest.warns(UserWarning, match="clip gone: .*such.mp4"), pytest.raises(ValueError, match="no readable clips"):
        t2v_train_set(t[2:], T2VConfig())


def test_an_interrupted_save_is_recovered(tmp_path):
    p = TextToVideo("tiny")
    p.save_pretrained(tmp_path/"m")
    (tmp_path/"m").rename(tmp_path/"m.tmp-old")                        # killed between the two swaps: the model is only here
    p.save_pretrained(tmp_path/"m")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["m"]
    (tmp_path/"m.tmp-old").mkdir(); (tmp_path/"m.tmp-old"/"stale").write_text("x")   # a removal that did not finish
    p.save_pretrained(tmp_path/"m")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["m"] and (tmp_path/"m"/"t2v.json").exists()


def test_preconditioned_output_passes_the_input_through_at_low_noise(tmp_path):
    from internvid_nb.models.t2v import T2VConfig
    torch.manual_seed(0); p = TextToVideo(T2VConfig(sigma_data=0.5))
    x = torch.randn(2, 48, 8, 8, 8); cond = p.encode(P)
    a = p._alphas_cumprod
    raw = lambda t: p.unet(x, t, encoder_hidden_states=cond).sample
    with torch.no_grad():
        low, high = p.denoise(x, torch.tensor([0, 0]), cond), p.denoise(x, torch.tensor([999, 999]), cond)
        assert (low - x / a[0].sqrt()).abs().max() < 0.02 < (raw(torch.tensor([0, 0])) - x).abs().max()   # detail kept
        assert torch.allclose(high, raw(torch.tensor([999, 999])), atol=1e-3)                               # F is x0 at pure noise
    vids = np.random.default_rng(0).integers(0, 256, (4, 8, 32, 32, 3), dtype=np.uint8)
    h = train_t2v(p, P * 2, vids, T2VTrainConfig(steps=3, batch_size=4, log_every=1, warmup=0), tmp_path, log=lambda s: None)
    assert all(np.isfinite(r["loss"]) for r in h)
    p.save_pretrained(tmp_path/"m")
    assert TextToVideo.from_pretrained(tmp_path/"m").config.sigma_data == 0.5
    with pytest.raises(ValueError, match="snr_gamma and sigma_data"):
        train_t2v(p, P * 2, vids, T2VTrainConfig(steps=1, batch_size=4, snr_gamma=5), log=lambda s: None)
    with pytest.raises(ValueError, match="sigma_data 0.5 is for prediction_type 'sample'"):
        TextToVideo(T2VConfig(sigma_data=0.5, prediction_type="epsilon"))
