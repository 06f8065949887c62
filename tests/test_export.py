"""WebDataset shards: round trip into a training loader, bad clips skipped with their error, unsafe members refused."""
import io, tarfile
import numpy as np
import pandas as pd
import pytest
from internvid_nb.data.shards import write_shards, read_shards, sample_frames, ShardError
from internvid_nb.training.viclip import ClipSet
from internvid_nb.data.videoio import read_frames


def test_shards_feed_a_training_set(world, tmp_path):
    clips = world.clips[world.clips.split == "test"].head(6)
    bad = pd.DataFrame([{"clip_id": "gone", "path": str(tmp_path / "gone.mp4"), "caption": "x", "start": 0.0, "end": 1.0}])
    errors = []
    shards = write_shards(pd.concat([clips.iloc[:3], bad, clips.iloc[3:]], ignore_index=True), tmp_path / "wds", shard_size=4, errors=errors)
    assert len(shards) == 2 and len(errors) == 1 and "gone" in errors[0] and "file not found" in errors[0]
    samples = list(read_shards(shards))
    assert [s["json"]["clip_id"] for s in samples] == clips.clip_id.tolist()
    frames = [sample_frames(s) for s in samples]
    np.testing.assert_array_equal(frames[0], read_frames(clips.path.iloc[0], range(24)))   # the whole file travels as is
    data = ClipSet(pd.DataFrame({"caption": [s["txt"] for s in samples], "source": range(6)}), 64, frames=frames)
    assert data.eval_item(0).shape == (8, 3, 64, 64) and data.captions == clips.caption.tolist()
    assert not list((tmp_path / "wds").glob(".*"))                                       # no temporaries left


def test_unsafe_members_are_refused(tmp_path):
    p = tmp_path / "evil.tar"
    with tarfile.open(p, "w") as t:
        for name in ("ok.txt", "a/../../x.txt", "/abs.txt"):
            info = tarfile.TarInfo(name); info.size = 2; t.addfile(info, io.BytesIO(b"hi"))
        hard = tarfile.TarInfo("h.txt"); hard.type = tarfile.LNKTYPE; hard.linkname = "ok.txt"; t.addfile(hard)
    errs = []
    assert list(read_shards([p], errors=errs)) == [{"__key__": "ok", "txt": "hi"}]
    assert len(errs) == 3 and all("evil.tar" in e for e in errs)
    with pytest.raises(ShardError, match="unsafe path"): list(read_shards([p]))


def test_a_rerun_with_fewer_clips_removes_the_old_shards(world, tmp_path):
    clips = world.clips[world.clips.split == "test"].head(5)
    assert len(write_shards(clips, tmp_path / "wds", shard_size=2)) == 3
    (tmp_path / "wds" / "other-000009.tar").write_bytes(b"")                 # another prefix's shard stays
    shards = write_shards(clips.head(2), tmp_path / "wds", shard_size=2)
    assert sorted(p.name for p in (tmp_path / "wds").glob("*.tar")) == ["other-000009.tar", "shard-000000.tar"]
    assert [s["json"]["clip_id"] for s in read_shards(sorted((tmp_path / "wds").glob("shard-*.tar")))] == clips.clip_id.head(2).tolist()


def test_a_corrupt_member_or_shard_is_an_error_and_the_other_shards_are_read(tmp_path):
    good, bad, junk = tmp_path / "good.tar", tmp_path / "bad.tar", tmp_path / "junk.tar"
    for p, members in ((bad, [("a.txt", b"hi"), ("a.json", b"{not json"), ("b.txt", b"\xff\xfe"), ("c.txt", b"ok")]),
                       (good, [("d.txt", b"yes"), ("d.json", b'{"clip_id": "d"}')])):
        with tarfile.open(p, "w") as t:
            for name, data in members:
                info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
    junk.write_bytes(b"this is not a tar file" * 40)
    errs = []
    samples = list(read_shards([bad, junk, good], errors=errs))
    assert samples == [{"__key__": "a", "txt": "hi"}, {"__key__": "c", "txt": "ok"}, {"__key__": "d", "txt": "yes", "json": {"clip_id": "d"}}]
    assert len(errs) == 3 and "bad.tar: member a.json: JSONDecodeError" in errs[0] and "bad.tar: member b.txt: UnicodeDecodeError" in errs[1]
    assert "junk.tar" in errs[2]
    with pytest.raises(ShardError, match="member a.json"): list(read_shards([bad]))
    with pytest.raises(ShardError, match="junk.tar"): list(read_shards([junk]))
