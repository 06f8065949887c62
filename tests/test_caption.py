"""Multi-scale captioning: the embedded defaults on held-out clips, the Hugging Face backends by path, bad input."""
import numpy as np
import pandas as pd
import pytest
import torch
from internvid_nb.models.captioners import ImageCaptioner, Summarizer, clean_caption, summary_input
from internvid_nb.models.loader import ModelNotFound
from internvid_nb.curation.caption import caption_stage
from internvid_nb.world.captioning import caption_accuracy, parse_caption, word_tokenizer, train_summarizer, train_captioner, save_hf, CaptionerRecipe, SummarizerRecipe, evaluate_captioning


@pytest.fixture(scope="module")
def defaults():
    return ImageCaptioner("captioner-tiny", device="cpu"), Summarizer("summarizer-tiny", device="cpu")


def test_defaults_caption_held_out_clips(world, defaults):
    test = world.clips[world.clips.split == "test"]
    ev = evaluate_captioning(test, *defaults)
    assert ev["coarse"]["n"] == len(test) == 48
    s, c = ev["summary"], ev["coarse"]
    # measured on the shipped models; chance is 0.1 (digit), 0.17 (colour), 0.11 (motion)
    assert s["color"] >= 0.75 and s["digit"] >= 0.15 and s["motion"] >= 0.4, s
    assert c["motion"] == 0.0 and s["motion"] > c["motion"]           # one frame cannot say how things move
    res = ev["captions"]
    assert res.caption_fine.map(len).eq(3).all()                       # 3 s clips, 1 fps
    assert (res.caption_model == "captioner-tiny").all() and (res.summary_model == "summarizer-tiny").all()


def test_stage_reports_bad_clips_and_goes_on(world, defaults, tmp_path):
    rows = world.clips[world.clips.split == "val"].head(3)[["clip_id", "path", "start", "end"]]
    (tmp_path / "zero.mp4").write_bytes(b"")
    bad = pd.DataFrame([{"clip_id": "zero", "path": str(tmp_path / "zero.mp4"), "start": 0.0, "end": 1.0},
                        {"clip_id": "empty_range", "path": rows.path.iloc[0], "start": 2.99, "end": 2.995}])
    out = caption_stage(pd.concat([bad.head(1), rows, bad.tail(1)], ignore_index=True), *defaults)
    assert out.clip_id.tolist() == ["zero", *rows.clip_id, "empty_range"]
    assert out.status.tolist() == ["error", "ok", "ok", "ok", "error"]
    assert "zero.mp4" in out.error.iloc[0] and "holds no frame" in out.error.iloc[-1]
    assert out.caption_summary.iloc[1:4].map(lambda s: len(parse_caption(s)) >= 1).all()


def test_missing_model_says_what_to_do(tmp_path):
    with pytest.raises(ModelNotFound, match="huggingface-cli download someone/blip-huge"):
        ImageCaptioner("someone/blip-huge")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="does not hold a loadable model"):
        Summarizer(tmp_path / "empty")


def test_clean_caption_and_summary_input():
    assert clean_caption("a\x00b\x1b[31m c\r\n d") == "a b [31m c d"
    assert clean_caption("") == "" and clean_caption(float("nan")) == ""
    assert len(clean_caption("x" * 10**6)) == 1000
    fine = ["a red digit 3 on the left", "a red digit 3 on the left", "", "a red digit 3 on the right\x07"]
    assert summary_input("a red digit 3", fine) == "summarize: a red digit 3 | frames: a red digit 3 on the left |  | a red digit 3 on the right"
    # huge, empty and HTML captions go through the summarizer without breaking the batch
    s = Summarizer("summarizer-tiny", device="cpu")
    out = s(["", "<script>alert(1)</script>", "word " * 5000], [[], ["<b>x</b>"], ["word " * 5000] * 3])
    assert len(out) == 3 and all(isinstance(x, str) for x in out)


def _blip(path):
    "A BLIP captioner with random weights whose LM head always says 'red' (a real BlipForConditionalGeneration)."
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipProcessor, BlipImageProcessor, BertTokenizer
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "red", "digit"]
    proc = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                         tokenizer=BertTokenizer(vocab={w: i for i, w in enumerate(words)}))
    cfg = BlipConfig(text_config=dict(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, bos_token_id=2, sep_token_id=3, pad_token_id=0, max_position_embeddings=64),
                     vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                                        patch_size=8), projection_dim=32)
    torch.manual_seed(0)
    m = BlipForConditionalGeneration(cfg)
    with torch.no_grad():
        b = m.text_decoder.cls.predictions.bias; b.fill_(-100.0); b[words.index("red")] = 100.0
    m.save_pretrained(path); proc.save_pretrained(path)


def test_any_image_to_text_model_by_path(tmp_path):
    _blip(tmp_path / "blip")
    ims = [np.zeros((40, 50, 3), np.uint8), np.full((30, 30, 3), 200, np.uint8), np.zeros((64, 64, 3), np.uint8)]
    cap = ImageCaptioner(tmp_path / "blip", device="cpu", max_new_tokens=3, batch_size=2)
    assert cap(ims) == ["red red red"] * 3
    with_prompt = ImageCaptioner(tmp_path / "blip", device="cpu", max_new_tokens=3, prompt="a photo of")
    assert with_prompt(ims[:1]) == ["red red red"]                     # the prompt is not part of the caption


def test_causal_lm_summarizer_by_path(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel
    tok = word_tokenizer(["a red digit moves", "clip caption frames middle frame"])
    torch.manual_seed(0)
    m = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=32, n_layer=1, n_head=2,
                                   bos_token_id=1, eos_token_id=2, pad_token_id=0))
    with torch.no_grad():
        m.lm_head.weight.zero_(); m.transformer.ln_f.bias.fill_(1.0); m.transformer.ln_f.weight.zero_()
        m.lm_head.weight[tok.convert_tokens_to_ids("digit")] = 5.0      # always says "digit"
    m.save_pretrained(tmp_path / "lm"); tok.save_pretrained(tmp_path / "lm")
    s = Summarizer(tmp_path / "lm", device="cpu", max_new_tokens=2)
    assert not s.seq2seq and s.tokenizer.padding_side == "left"
    out = s(["a red digit", "a digit"], [["a red digit moves"], ["a digit", "a red digit", "a digit"]])
    assert out == ["digit digit", "digit digit"]                        # only new tokens, not the prompt
    assert s.summarize(["a red digit"], "a red digit") == "digit digit"


def test_training_code_learns_and_round_trips(tmp_path, world):
    """CPU-sized run of the code behind the shipped defaults: the summarizer memorises, the captioner saves and loads."""
    clips = world.clips[world.clips.split == "train"].head(6).reset_index(drop=True)
    tok = word_tokenizer([x for fc in clips.frame_captions for x in fc] + clips.caption_true.tolist())
    inputs = [summary_input(fc[12], fc[::8]) for fc in clips.frame_captions]
    model = train_summarizer(inputs, clips.caption_true.tolist(), tok, SummarizerRecipe(steps=300, batch_size=6, d_model=48, lr=3e-3), log=lambda *a: None)
    save_hf(model, tok, tmp_path / "summ")
    got = Summarizer(tmp_path / "summ", device="cpu")(clips.frame_captions.map(lambda f: f[12]).tolist(),
                                                      clips.frame_captions.map(lambda f: f[::8]).tolist())
    assert got == clips.caption_true.tolist()
    from internvid_nb.data.videoio import read_range
    frames = [read_range(p, 0, 3) for p in clips.path]
    cap_model = train_captioner(clips, frames, tok, CaptionerRecipe(steps=3, batch_size=4, width=32, encoder_layers=1, decoder_layers=1,
                                                                    heads=2, frames_per_clip=2), log=lambda *a: None)
    save_hf(cap_model, tok, tmp_path / "cap", image_size=64, card={"steps": 3})
    cap = ImageCaptioner(tmp_path / "cap", device="cpu", max_new_tokens=4)
    assert len(cap([f[0] for f in frames])) == 6 and (tmp_path / "cap" / "training.json").exists()
    assert not list(tmp_path.glob("*.tmp-*"))
