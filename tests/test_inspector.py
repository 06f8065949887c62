"""Caption inspector: sliders change the count and the list, captions are escaped, a missing video does not break it."""
import pandas as pd
from internvid_nb.ui.inspector import CaptionInspector


def _table(world, tmp_path):
    t = world.clips[world.clips.split == "val"].head(6).copy()
    t["sim_score"] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    t["aes_score"] = [5, 5, 5, 1, 1, 1]
    t.loc[t.index[0], "caption"] = "<img src=x onerror=alert(1)> & co"
    t.loc[t.index[5], "path"] = str(tmp_path / "missing <b>.mp4")
    return t


def test_sliders_filter_and_count(world, tmp_path):
    ins = CaptionInspector(_table(world, tmp_path))
    assert set(ins.sliders) >= {"sim_score", "aes_score"} and "<b>6</b> of 6" in ins.count.value
    ins.sliders["sim_score"].value = 0.35
    assert "<b>3</b> of 6" in ins.count.value and len(ins.select.options) == 3
    ins.sliders["aes_score"].value = 3
    assert "<b>0</b> of 6" in ins.count.value and "no clip" in ins.captions.value


def test_captions_and_paths_are_escaped(world, tmp_path):
    t = _table(world, tmp_path)
    ins = CaptionInspector(t)
    ins.select.value = t.clip_id.iloc[0]
    assert "<img" not in ins.captions.value and "&lt;img src=x onerror=alert(1)&gt; &amp; co" in ins.captions.value
    assert ins.preview.value[:4] == b"GIF8" and "<li>" in ins.captions.value      # frame captions shown as fine captions
    ins.select.value = t.clip_id.iloc[5]                                            # the video is missing
    assert ins.preview.value == b"" and "missing &lt;b&gt;.mp4" in ins.captions.value
