# Two commands do all set-up on a fresh machine: `make demo` (the main job) and `make test` (every test;
# it installs Debian's chromium through apt for the JupyterLab browser test).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
OUT    ?= outputs/demo

.PHONY: install demo test lab bench data data-check readme train-tiny train-captioner train-t2v train-reader

install: $(STAMP)

# torch first, from the CPU wheel on disk, so nothing later pulls a CUDA build.
$(STAMP): settings.ini setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m internvid_nb.demo --out $(OUT)

# Notebooks are the source of truth: cleaning and exporting must leave no diff, then every notebook runs,
# then pytest (its summary line last).
test: $(STAMP)
	$(BIN)/nbdev_clean
	@git status --porcelain -- nbs | grep . && { echo "nbdev_clean changed nbs/: run it and commit"; exit 1; } || true
	$(BIN)/nbdev_export
	@git status --porcelain -- internvid_nb | grep . && { echo "nbdev_export changed internvid_nb/: export and commit"; exit 1; } || true
	$(BIN)/nbdev_test --n_workers 2
	bash tests/setup_browser.sh $(BIN)/python
	$(BIN)/python -m pytest tests/ -q -p no:cacheprovider

# nbdev's pre-save hook cleans each notebook as Lab saves it (kernelspec, language_info, execution counts), so opening
# a notebook does not mark it changed in git (jupyter_server_config.py sets the same for a plain `jupyter lab` here).
lab: $(STAMP)
	$(BIN)/jupyter lab --ContentsManager.pre_save_hook=nbdev.clean.clean_jupyter nbs/

bench: $(STAMP)
	$(BIN)/python bench/run.py --out bench/results/bench.json

# Regenerate data_samples/sample_world bit for bit, and check it against its manifest.
data: $(STAMP)
	$(BIN)/python -m internvid_nb.world.sampleworld --out data_samples/sample_world

data-check: $(STAMP)
	$(BIN)/python -m internvid_nb.world.sampleworld --check data_samples/sample_world

readme: $(STAMP)
	$(BIN)/jupyter nbconvert --to markdown --log-level WARN nbs/index.ipynb --output-dir . --output README

# Retrain the embedded viclip-tiny (about 25 minutes on 2 CPU cores); writes data_samples/models/viclip-tiny.
train-tiny: $(STAMP)
	$(BIN)/python -c "from internvid_nb.world.viclip_tiny import train_viclip_tiny; print(train_viclip_tiny(replace_shipped=True)[1])"

# Retrain the embedded captioner-tiny and summarizer-tiny (about 15 minutes on 2 CPU cores); writes data_samples/models.
train-captioner: $(STAMP)
	$(BIN)/python -c "from internvid_nb.world.captioning import train_caption_models; s = train_caption_models(replace_shipped=True); print(s['coarse'], s['summary'])"

# Retrain the embedded text-to-video default (data_samples/models/t2v-tiny); resumable from data_samples/models/t2v-tiny-run.
train-t2v: $(STAMP)
	$(BIN)/python -c "from internvid_nb.world.generation import train_t2v_tiny; train_t2v_tiny(replace_shipped=True)"

# Retrain the embedded world-reader, the judge of generated sample-world videos (about 10 minutes on 2 CPU cores).
train-reader: $(STAMP)
	$(BIN)/python -c "from internvid_nb.world.readers import train_default_reader; train_default_reader(replace_shipped=True)"
