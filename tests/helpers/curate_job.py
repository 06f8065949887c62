"""Run by test_curate: the whole curation chain over the sample world's raw videos, in small batches so it can be killed midway."""
import sys
from internvid_nb.curation.curate import CurateConfig, run_curation
from internvid_nb.world.sampleworld import load_world
from internvid_nb.curation.segment import SegmentConfig

w = load_world()
run_curation(w.raw[["video_id", "path"]], sys.argv[1], CurateConfig(segment=SegmentConfig(min_scene_len=8), batch_size=2),
             progress=False, log=lambda *a: None)
