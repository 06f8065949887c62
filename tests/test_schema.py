"""Tables: schema checks, parquet, InternVid jsonl with its field variants and malformed lines."""
import json
import numpy as np
import pandas as pd
import pytest
from internvid_nb.data.schema import TABLES, conform, SchemaError, write_parquet, read_parquet, read_internvid_jsonl, write_internvid_jsonl, parse_timestamp, format_timestamp, JsonlError


def _line(**kw):
    rec = {"YoutubeID": "vid1", "Start_timestamp": "00:00:01.000", "End_timestamp": "00:00:03.500", "Caption": "a cat"}
    rec.update(kw)
    return json.dumps({k: v for k, v in rec.items() if v is not None}, ensure_ascii=False)


def test_every_score_variant_is_read(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text("\n".join([_line(UMT_Score=0.4), _line(**{"UMT-SIM": 0.35}), _line(CLIP_Score=0.3),
                            _line(UMT_Score=0.41, CLIP_Score=0.29, Aesthetic_Score=5.5)]) + "\n")
    df, issues = read_internvid_jsonl(p)
    assert issues == []
    assert list(df.sim_model) == ["UMT", "UMT", "CLIP", "UMT"]
    assert df.sim_score.tolist() == [0.4, 0.35, 0.3, 0.41]
    assert df.clip_score.iloc[3] == 0.29 and df.aes_score.iloc[3] == 5.5 and np.isnan(df.aes_score.iloc[0])
    assert df.start.iloc[0] == 1.0 and df.end.iloc[0] == 3.5


def test_malformed_lines_are_reported_by_number_and_the_rest_is_kept(tmp_path):
    lines = [_line(), "{not json", _line(End_timestamp="00:00:00.500"), _line(YoutubeID=None), "[1, 2]",
             _line(Start_timestamp="1:99:00"), _line(UMT_Score="NaN"), _line(Caption=17), _line(Caption="ok <b>&</b>")]
    p = tmp_path / "b.jsonl"; p.write_text("\n".join(lines) + "\n")
    df, issues = read_internvid_jsonl(p)
    assert len(df) == 2 and df.caption.iloc[1] == "ok <b>&</b>"
    assert [i.line for i in issues] == [2, 3, 4, 5, 6, 7, 8]
    causes = [i.cause for i in issues]
    assert "invalid JSON" in causes[0] and "not after" in causes[1] and "YoutubeID" in causes[2]
    assert "JSON object" in causes[3] and "over 59" in causes[4] and "not finite" in causes[5] and "Caption" in causes[6]
    with pytest.raises(JsonlError, match="line 2"): read_internvid_jsonl(p, strict=True)


def test_invalid_utf8_line_is_an_issue(tmp_path):
    p = tmp_path / "u.jsonl"
    p.write_bytes(_line().encode() + b"\n" + _line(Caption="caf\u00e9").encode("utf-8").replace(b"\xc3\xa9", b"\xe9") + b"\n" + _line().encode() + b"\n")
    df, issues = read_internvid_jsonl(p)
    assert len(df) == 2 and [i.line for i in issues] == [2] and "not UTF-8" in issues[0].cause


def test_list_columns_come_back_as_lists_after_a_null(tmp_path):
    df = pd.DataFrame({"clip_id": ["a", "b"], "video_id": ["v", "v"], "start": [0, 1], "end": [1, 2], "caption_fine": [None, ["x", "y"]]})
    write_parquet(df, tmp_path / "n.parquet", "clips")
    assert read_parquet(tmp_path / "n.parquet").caption_fine.iloc[1] == ["x", "y"]


def test_jsonl_roundtrip_keeps_extra_fields_and_unicode(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text(_line(Caption="数字三在移动 🎬", UMT_Score=0.5, lang="zh", Extra={"a": 1}) + "\n")
    df, _ = read_internvid_jsonl(p)
    write_internvid_jsonl(df, tmp_path / "d.jsonl")
    rec = json.loads((tmp_path / "d.jsonl").read_text(encoding="utf-8"))
    assert rec["Caption"] == "数字三在移动 🎬" and rec["lang"] == "zh" and rec["Extra"] == {"a": 1} and rec["UMT_Score"] == 0.5
    assert rec["Start_timestamp"] == "00:00:01.000"


def test_timestamps():
    assert parse_timestamp("01:02:03.250") == 3723.25 and parse_timestamp("02:03") == 123.0
    assert format_timestamp(0.0006) == "00:00:00.001" and format_timestamp(59.9996) == "00:01:00.000"
    for bad in ["", "abc", "1:2:3:4", "-5", None]:
        with pytest.raises(ValueError): parse_timestamp(bad)


def test_conform_and_parquet(tmp_path):
    df = pd.DataFrame({"clip_id": ["a", "b"], "video_id": ["v", "v"], "start": [0, 1], "end": [1, 2],
                       "caption_fine": [["x", "y"], []], "n_frames": [3, 4], "label": ["p", "q"]})
    write_parquet(df, tmp_path / "t.parquet", "clips")
    back = read_parquet(tmp_path / "t.parquet", "clips")
    assert back.caption_fine.tolist() == [["x", "y"], []] and back.start.dtype == "float64" and back.label.tolist() == ["p", "q"]
    with pytest.raises(SchemaError, match="required"): conform(df.drop(columns="clip_id"))
    with pytest.raises(SchemaError, match="unknown table"): conform(df, "nope")
    with pytest.raises(SchemaError, match="'end'"): conform(df.assign(end=["1", "two"]))
    assert all(c.doc for t in TABLES.values() for c in t.values())
