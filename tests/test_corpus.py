"""Corpus statistics: counts against the sample world's ground truth, the InternVid-format sample, languages, transcripts."""
import numpy as np
import pandas as pd
import pytest
from internvid_nb.curation.corpus import corpus_summary, word_kinds, word_kind, top_words, detect_language, duration, caption_words, transcribe_stage, clip_audio
from internvid_nb.ui.corpus_plots import compare_tables, score_hist, flt_threshold


def test_sample_world_counts_match_ground_truth(world):
    c = world.clips
    s = corpus_summary(c)
    assert s["clips"] == len(c) and s["videos"] == c.video_id.nunique()
    assert s["duration_mean_s"] == pytest.approx(3.0) and s["clips_without_caption"] == 0
    k = word_kinds(c.caption_true).set_index("word")
    colours = pd.concat([c.color, c.color2[c.n_objects == 2]]).value_counts()
    for colour, n in colours.items():
        assert k.loc[colour, "count"] == n and k.loc[colour, "kind"] == "attribute"
    for bg, n in c.background.value_counts().items():
        assert k.loc[bg, "count"] >= n                        # background colours double as object colours
    assert k.loc["digit", "count"] == c.n_objects.sum() and k.loc["background", "kind"] == "location"
    moving_left = ((c.motion == "left").sum() + ((c.motion2 == "left") & (c.n_objects == 2)).sum())
    assert k.loc["moves", "kind"] == "action" and k.loc["moves", "count"] >= moving_left
    assert (caption_words(c, "caption_true") == c.caption_true.str.split().str.len()).all()


def test_internvid_format_sample(tmp_path):
    from internvid_nb.data.schema import read_internvid_jsonl
    from internvid_nb.data.core import data_samples_dir
    iv, issues = read_internvid_jsonl(data_samples_dir()/"internvid_format"/"sample.jsonl")
    assert not issues and len(iv) == 40
    s = corpus_summary(iv)
    assert s["videos"] == 8 and 2 <= s["duration_mean_s"] <= 40
    assert (duration(iv) > 0).all()
    tw = top_words(iv.caption, 5)
    assert tw["object"].word.iloc[0] == "man" and "kitchen" in set(tw["location"].word)
    assert set(detect_language(iv.caption)) == {"en"}
    assert 0.3 < flt_threshold(iv) < 0.45
    fig = compare_tables({"a": iv, "b": iv.head(10)})
    assert len(fig.axes) == 4                                    # durations, lengths, sim, aes


def test_word_kinds_and_languages():
    assert [word_kind(w) for w in ["horses", "climbing", "wooden", "beach", "and", "2026"]] == \
        ["object", "action", "attribute", "location", "stop", "stop"]
    assert detect_language(["le chat dort sur le canapé", "der Hund spielt im Garten", "", None]) == ["fr", "de", "und", "und"]


def _mp4(path, audio):
    import av
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=8); v.width = v.height = 32; v.pix_fmt = "yuv420p"
        a = c.add_stream("aac", rate=16000) if audio else None
        if a is not None: a.layout = "mono"
        for i in range(16):
            for p in v.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 8 * i, np.uint8), format="rgb24")): c.mux(p)
        if a is not None:
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 32000), np.float32), format="flt", layout="mono"); fr.sample_rate = 16000
            for p in [*a.encode(fr), *a.encode(None)]: c.mux(p)
        for p in v.encode(None): c.mux(p)


def test_transcribe_stage_statuses(tmp_path):
    _mp4(tmp_path/"a.mp4", True); _mp4(tmp_path/"b.mp4", False); (tmp_path/"c.mp4").write_bytes(b"not a video")
    seen = []
    class Echo:                                   # stands in for the ASR model: reports the length of the audio it got
        name = "echo"
        def __call__(self, audios):
            seen.extend(len(a) for a in audios)
            return [{"text": f"{len(a)} samples", "language": "en"} for a in audios]
    t = pd.DataFrame({"clip_id": ["a", "b", "c"], "path": [str(tmp_path/f"{k}.mp4") for k in "abc"], "start": [0.5, 0, 0], "end": [1.5, 2, 2]})
    out = transcribe_stage(t, Echo()).set_index("clip_id")
    assert out.loc["a", "transcript_status"] == "ok" and out.loc["a", "transcript_lang"] == "en"
    assert abs(seen[0] - 16000) < 0.15 * 16000                # one second of audio, from the clip's range
    assert out.loc["b", "transcript_status"] == "no audio" and out.loc["b", "transcript"] == ""
    assert out.loc["c", "transcript_status"].startswith("error: clip c:")


def _tiny_ctc(folder):
    "A randomly initialised wav2vec2 CTC model with its processor, saved as a local folder (no download)."
    import json
    from transformers import (Wav2Vec2Config, Wav2Vec2ForCTC, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor,
                              Wav2Vec2Processor)
    folder.mkdir()
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{c: i + 3 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz'")}}
    (folder/"vocab.json").write_text(json.dumps(vocab))
    tok = Wav2Vec2CTCTokenizer(str(folder/"vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|")
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True)
    Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(folder)
    cfg = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         conv_dim=(32, 32), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=2, pad_token_id=0)
    Wav2Vec2ForCTC(cfg).save_pretrained(folder)
    return folder


def test_transcriber_loads_a_local_asr_folder(tmp_path):
    "The real transformers path: a (random, untrained) CTC model from a folder; non-Whisper models report no language."
    from internvid_nb.curation.corpus import Transcriber
    tr = Transcriber(str(_tiny_ctc(tmp_path/"asr")))
    _mp4(tmp_path/"a.mp4", True); _mp4(tmp_path/"b.mp4", False)
    t = pd.DataFrame({"clip_id": ["a", "b"], "path": [str(tmp_path/"a.mp4"), str(tmp_path/"b.mp4")], "start": [0, 0], "end": [2, 2]})
    out = transcribe_stage(t, tr).set_index("clip_id")
    assert out.loc["a", "transcript_status"] == "ok" and out.loc["a", "transcript_model"] == str(tmp_path/"asr")
    import re
    assert isinstance(out.loc["a", "transcript"], str) and re.fullmatch("[a-z]{2}|und", out.loc["a", "transcript_lang"])
    from internvid_nb.curation.corpus import _lang_code
    assert _lang_code("english") == "en" and _lang_code("Chinese") == "zh" and _lang_code(None) is None   # Whisper's names
    assert out.loc["b", "transcript_status"] == "no audio"
