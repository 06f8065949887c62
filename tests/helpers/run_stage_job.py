"""Run by test_runner: a real decoding stage over the sample world's clips, slow enough to be killed midway."""
import sys, time
import numpy as np
import pandas as pd
from internvid_nb.scale.runner import run_stage, run_lock, remove_stale_temp
from internvid_nb.world.sampleworld import load_world
from internvid_nb.data.videoio import read_frames, segments


def frame_stats(batch: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in batch.iterrows():
        f = read_frames(r.path, segments(8, "middle")).astype(np.float32)
        rows.append({"clip_id": r.clip_id, "brightness": float(f.mean()), "motion": float(np.abs(np.diff(f, axis=0)).mean())})
    time.sleep(0.1)
    return pd.DataFrame(rows)


table = load_world().clips[["clip_id", "path"]]
if len(sys.argv) > 2: table = pd.concat([table, pd.DataFrame({"clip_id": ["broken"], "path": ["/nonexistent.mp4"]})], ignore_index=True)
with run_lock(sys.argv[1]):                                    # as the command line does: the folder locked, a killed run's temp files removed
    remove_stale_temp(sys.argv[1])
    run_stage(frame_stats, table, sys.argv[1], batch_size=8, progress=False)
