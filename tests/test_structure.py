"The structure's figures stay within the limits of issue 18 (tools/structure_figures.py), and the 0.1 import paths still work."
import json, subprocess, sys, warnings
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import structure_figures as sf


def test_figures_within_limits():
    found = sf.figures(ROOT)
    assert sf.over_limits(found) == [], found
    assert found["modules"] > 40 and found["export_cells"] > 300       # it did read the package and the notebooks


def test_figures_catch_what_they_measure(tmp_path):
    pkg = tmp_path / "internvid_nb"; (pkg / "world").mkdir(parents=True); (tmp_path / "nbs").mkdir()
    (pkg / "__init__.py").write_text(""); (pkg / "world" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import _helper\nfrom .world.w import truth\n" + "x = 1\n" * 460)
    (pkg / "b.py").write_text("from .a import x\n_helper = 'y' * 2; z = 3\n" + "# " + "long " * 40 + "\n")
    (pkg / "world" / "w.py").write_text("truth = 1\n")
    found = sf.figures(tmp_path)
    assert found["cycles"] == [["internvid_nb.a", "internvid_nb.b"]]
    assert found["private_imports"] == ["internvid_nb.a <- internvid_nb.b._helper"]
    assert found["library_imports_of_world"] == ["internvid_nb.a -> internvid_nb.world.w"]
    assert found["largest_module_lines"] == 462 and found["semicolon_statements"] == 1
    assert {b.split(":")[0] for b in sf.over_limits(found)} >= {"cycles", "private_imports", "library_imports_of_world",
                                                                  "largest_module_lines"}


def test_script_check_passes_here():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "structure_figures.py"), str(ROOT), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


OLD_NAMES = {   # a sample of 0.1's public names per module, each must still import from the old path
    "core": ["atomic_write", "map_items", "data_samples_dir"], "videoio": ["read_frames", "probe", "mp4_bytes"],
    "schema": ["write_parquet", "read_internvid_jsonl"], "sampleworld": ["load_world", "render_clip", "MOTIONS"],
    "tokenizer": ["clip_tokenizer"], "viclip": ["ViCLIP", "load_torch_file", "preprocess", "viclip_config"],
    "train": ["train", "TrainConfig", "LivePlot", "train_viclip_tiny", "lr_at"], "runner": ["run_stage", "Stage"],
    "segment": ["segment_stage"], "caption": ["ImageCaptioner", "caption_stage", "resolve_model", "train_caption_models"],
    "evaluate": ["zero_shot", "retrieval", "FrameAveraged", "run_comparisons"],
    "filter": ["ViCLIPScorer", "score_stage", "VideoTextModel", "duplicate_pairs_found"], "export": ["write_shards"],
    "inspector": ["CaptionInspector"], "curate": ["run_curation"], "explorer": ["EmbeddingExplorer"],
    "generate": ["TextToVideo", "train_t2v", "GenerationMetrics", "Gallery", "DigitFeatures"],
    "corpus": ["corpus_summary", "top_words_plot"], "distributed": ["RayEngine"],
}


@pytest.mark.parametrize("old", sorted(OLD_NAMES))
def test_old_import_paths_warn_and_resolve(old):
    import importlib
    module = importlib.import_module(f"internvid_nb.{old}")
    for name in OLD_NAMES[old]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = getattr(module, name)
        assert value is not None and caught and issubclass(caught[0].category, DeprecationWarning), (old, name)
        assert f"internvid_nb.{old}.{name} moved to internvid_nb." in str(caught[0].message)
    assert set(OLD_NAMES[old]) <= set(module.__all__)


def test_names_that_left_cli_still_resolve():
    import internvid_nb.cli as cli
    with pytest.warns(DeprecationWarning, match="internvid_nb.cli.load_config moved to internvid_nb.pipeline.config"):
        assert callable(cli.load_config)
    with pytest.warns(DeprecationWarning, match="internvid_nb.cli.read_table moved to internvid_nb.data.tables"):
        assert callable(cli.read_table)
    with pytest.raises(AttributeError, match="no_such_name"):
        cli.no_such_name


def test_readme_layout_table_is_the_notebooks():
    "README's layout table is what tools/readme_layout.py makes from the notebooks (paste it after a change)."
    from readme_layout import layout_table
    assert layout_table(ROOT / "nbs") in (ROOT / "README.md").read_text()


def test_no_undefined_or_shadowed_names_in_the_package():
    "pyflakes. checks through ruff (undefined, redefined, unused imports): an undefined name (a renamed variable left in an f-string) fails here, not at run time."
    ruff = Path(sys.executable).parent / "ruff"
    r = subprocess.run([str(ruff), "check", "--select", "F821,F811,F401", "--no-cache", "--output-format", "concise",
                        "--exclude", "_modidx.py", str(ROOT / "internvid_nb")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_notebook_opened_in_jupyterlab_is_saved_unchanged(tmp_path):
    "nbdev's pre-save hook (jupyter_server_config.py, make lab) undoes what JupyterLab writes into an opened notebook."
    from execnb.nbio import nb2str
    from nbdev.clean import clean_jupyter
    root = Path(__file__).resolve().parent.parent
    assert 'pre_save_hook = "nbdev.clean.clean_jupyter"' in (root / "jupyter_server_config.py").read_text()
    path = tmp_path / "selection.ipynb"                                  # a copy: the hook also marks the folder trusted
    path.write_text((root / "nbs" / "ui" / "selection.ipynb").read_text())
    (tmp_path / "settings.ini").write_text((root / "settings.ini").read_text())
    nb = json.loads(path.read_text())
    nb["metadata"] = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
                      "language_info": {"name": "python", "version": "3.11.7", "file_extension": ".py"}}
    nb["cells"][1]["execution_count"] = 3                                # as Lab saves it
    clean_jupyter(str(path), {"type": "notebook", "content": nb})        # what the server calls before writing
    assert nb2str(nb) == path.read_text()                               # the bytes on disk do not change
