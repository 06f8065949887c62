import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def world():
    from internvid_nb.world.sampleworld import load_world
    return load_world()


@pytest.fixture(scope="session")
def bikes():
    from internvid_nb.world.sampleworld import real_clips
    return real_clips().set_index("name").loc["bikes.mp4", "path"]
