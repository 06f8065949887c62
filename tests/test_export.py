"""WebDataset shards: round trip into a training loader, bad clips skipped with their error, unsafe members refused."""
import io, tarfile
import numpy as np
import pandas as pd
import pytest
from internvid_nb.export import write_shards, read_shards, sample_frames, ShardError
from internvid_nb.train import ClipSet
from internvid_nb.videoio import read_frames


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
