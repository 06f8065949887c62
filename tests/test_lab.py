"""JupyterLab in a real browser: Debian's chromium, driven by Playwright, opens a copy of nbs/ui/inspector.ipynb in a
JupyterLab server on localhost, runs it, drags a slider of the caption inspector and sees the shown count drop.

Needs /usr/bin/chromium (apt) and the playwright package: `tests/setup_browser.sh` installs both (never a downloaded
browser). Without them the test fails rather than skips: the browser test is part of `make test`.
The screenshot lands in outputs/tests/test_lab/inspector.png, next to the server's log (server.log)."""
import contextlib, json, os, re, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "nbs" / "ui" / "inspector.ipynb"
EXPLORER = ROOT / "nbs" / "ui" / "explorer.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
OUT = ROOT / "outputs" / "tests" / "test_lab"
SHOT = OUT / "inspector.png"
SETUP = "run tests/setup_browser.sh (Debian's chromium through apt, playwright through pip)"
COUNT_RE = re.compile(r"(\d+)\s+of\s+(\d+)\s+clips pass the filters")
RUN_TIMEOUT_MS = 120_000          # kernel start + every cell of the notebook (about 15 s alone on 2 cores)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r: return r.status
    except OSError: return 0


def _stop(proc: subprocess.Popen, base: str, token: str):
    "Ask the server to shut down (it stops its kernels first); signal its process group only if it lingers."
    if proc.poll() is None:
        req = urllib.request.Request(f"{base}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"})
        try: urllib.request.urlopen(req, timeout=5).close()
        except OSError: pass
    for sig, wait in ((None, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if sig is not None:
            try: os.killpg(proc.pid, sig)                                   # the session the server was started in
            except ProcessLookupError: pass
        try: proc.wait(wait); break
        except subprocess.TimeoutExpired: pass


def _lab(tmp_path, notebook: Path):
    "A JupyterLab server on 127.0.0.1 serving a temp folder that holds a copy of `notebook`."
    OUT.mkdir(parents=True, exist_ok=True)
    work = tmp_path / "lab"
    work.mkdir()
    shutil.copy(notebook, work / notebook.name)                             # autosave writes the copy, never nbs/
    shutil.copy(ROOT / "settings.ini", work / "settings.ini")               # nbdev's pre-save hook reads it
    port, token = _free_port(), secrets.token_hex(16)
    # Jupyter's and IPython's config, data and runtime files, Lab's settings and workspaces, all in the temp folder:
    # no user state leaks in or out (kernelspecs and Lab extensions still come from the venv).
    env = dict(os.environ, **{k: str(tmp_path / d) for k, d in [
        ("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"), ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")]})
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", f"--ServerApp.token={token}",
           f"--ServerApp.root_dir={work}",
           "--ContentsManager.pre_save_hook=nbdev.clean.clean_jupyter",     # as `make lab` runs it
           "--LabApp.news_url=None"]                                        # the server fetches no news either
    # Never ask about (nor fetch) Jupyter news, and no toasts over the screenshot.
    notes = tmp_path / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notes.parent.mkdir(parents=True)
    notes.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}))
    log = OUT / "server.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while _get(f"{base}/api/status?token={token}") != 200:
            assert proc.poll() is None, f"jupyter lab exited with {proc.returncode}; see {log}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"jupyter lab did not answer within 60 s; see {log}"
            time.sleep(0.5)
        yield f"{base}/lab/tree/{notebook.name}?token={token}"
    finally:
        _stop(proc, base, token)


@pytest.fixture
def lab(tmp_path):
    yield from _lab(tmp_path, NOTEBOOK)


@pytest.fixture
def lab_explorer(tmp_path):
    yield from _lab(tmp_path, EXPLORER)


def _sync_playwright():
    "playwright's sync API, or a failure (not a skip) saying how to install it."
    try:
        from playwright.sync_api import sync_playwright, expect
    except ImportError as e:
        pytest.fail(f"playwright is not installed ({e}); {SETUP}")
    return sync_playwright, expect


def _count(text: str) -> tuple[int, int]:
    m = COUNT_RE.search(text)
    assert m, f"no count in {text!r}"
    return int(m[1]), int(m[2])


def _center(locator):
    """Scroll the notebook so the element sits mid-screen: in view for the mouse, with its cell's code above it.
    Lab 4 renders long cells lazily, so the page can still move after a scroll: repeat until the element stays put."""
    last = None
    for _ in range(20):
        locator.evaluate("e => e.scrollIntoView({block: 'center'})")
        locator.page.wait_for_timeout(300)
        box = locator.bounding_box()
        if box and box == last:
            return
        last = box


@contextlib.contextmanager
def _page(shot: Path, height: int):
    "A page of Debian's chromium (headless) for one test; on failure, a screenshot of what it showed goes to `shot`."
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing; {SETUP}"
    sync_playwright, expect = _sync_playwright()
    shot.unlink(missing_ok=True)
    with sync_playwright() as p:
        # as root it needs --no-sandbox, and small /dev/shm in containers wants the flag
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": height})
            page.set_default_timeout(30_000)
            expect.set_options(timeout=30_000)                              # waits on the kernel: not playwright's 5 s
            try:
                yield page, expect
            except BaseException:
                page.screenshot(path=str(shot))                             # whatever the page showed when it failed
                raise
        finally:
            browser.close()


def test_inspector_slider_changes_count_in_jupyterlab(lab):
    with _page(SHOT, 1000) as (page, expect):
        _drive(page, lab, expect)


def _drive(page, url, expect):
    notebook, idle = _run_all(page, url, expect, RUN_TIMEOUT_MS, SHOT)
    _drive_inspector(page, notebook, idle, expect)


def _run_all(page, url, expect, timeout_ms, shot):
    "Open the notebook, wait for its kernel, Run All Cells from the menu, and wait until every cell ran without error."
    page.goto(url)
    # The notebook starts its python3 kernel (from its metadata) on opening; wait until the status bar shows it idle.
    # Running cells before that makes Lab ask for a kernel. Should it ask anyway, take the kernel it offers.
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    expect(notebook).to_be_visible(timeout=60_000)
    idle = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"^Python 3\b.* \| Idle$"))
    expect(idle).to_have_count(1, timeout=60_000)
    dialog = page.locator(".jp-Dialog")
    if dialog.count(): dialog.get_by_role("button", name="Select", exact=True).click()

    # Run > Run All Cells, through the menu bar as a person would.
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item", has_text=re.compile(r"^Run All Cells")).click()

    # Wait until every code cell has run: a number in each prompt, none pending ([*]) or skipped after an error ([ ]).
    prompts = notebook.locator(".jp-CodeCell .jp-InputPrompt")
    deadline = time.monotonic() + timeout_ms / 1000
    while not all(re.fullmatch(r"\[\d+\]:", t.strip()) for t in prompts.all_text_contents()):
        assert time.monotonic() < deadline, f"the notebook did not finish running: prompts {prompts.all_text_contents()}; see {shot}"
        page.wait_for_timeout(500)
    errors = notebook.locator(".jp-OutputArea-output", has_text="Traceback")
    assert errors.count() == 0, f"the notebook raised: {errors.first.inner_text()[:2000]}; see {shot}"
    return notebook, idle


def _drive_inspector(page, notebook, idle, expect):

    # The inspector: one slider per score column, and the count line under them.
    count = notebook.locator(".widget-html-content", has_text="clips pass the filters")
    slider = notebook.locator(".widget-slider", has_text="min sim_score")
    expect(count).to_have_count(1)
    expect(slider).to_be_visible()
    _center(slider)                                                         # the sliders sit just above the count
    before_text = count.inner_text()
    before, total = _count(before_text)
    assert before > 1, f"the count {before_text!r} leaves nothing to filter; see {SHOT}"

    # Drag the sim_score slider's handle to the far right end of its track; the mouse-up commits the value
    # (continuous_update=False), the kernel recounts and the front end shows the new count.
    handle = slider.locator(".noUi-handle")
    track = slider.locator(".noUi-target").bounding_box()
    h = handle.bounding_box()
    page.mouse.move(h["x"] + h["width"] / 2, h["y"] + h["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] + 20, h["y"] + h["height"] / 2, steps=10)
    page.mouse.up()
    expect(count).not_to_have_text(before_text, timeout=30_000)
    after_text = count.inner_text()
    after, total_after = _count(after_text)

    # The clip list follows the count, and the preview pane settles on the selected clip (the kernel is done
    # reading its frames) before the picture is taken.
    expect(notebook.locator(".widget-select select option")).to_have_count(after)
    if after:
        selected = notebook.locator(".widget-select select").evaluate("s => s.options[s.selectedIndex].text")
        expect(notebook.locator(".widget-html-content", has_text="caption:")).to_contain_text(selected)
    else:
        expect(notebook.locator(".widget-html-content", has_text="no clip passes the filters")).to_have_count(1)
    expect(idle).to_have_count(1)
    _center(slider)
    page.screenshot(path=str(SHOT))
    assert total_after == total and after < before, f"count went {before_text!r} -> {after_text!r}; see {SHOT}"


EXPLORER_SHOT = OUT / "explorer.png"
EXPLORER_TIMEOUT_MS = 300_000     # the explorer notebook fits UMAP (numba compiles it first) and encodes 48 clips


def test_explorer_search_lasso_export_in_jupyterlab(lab_explorer, tmp_path):
    "Type a clip's caption into the search box, see that clip ranked first, lasso part of the map, export, read it back."
    from internvid_nb.data.tables import read_table
    from internvid_nb.world.sampleworld import load_world
    test = load_world().clips.query("split == 'test'").reset_index(drop=True)
    with _page(EXPLORER_SHOT, 1200) as (page, expect):
        notebook, idle = _run_all(page, lab_explorer, expect, EXPLORER_TIMEOUT_MS, EXPLORER_SHOT)
        written = _drive_explorer(page, notebook, idle, expect, test)
    back = read_table(written)
    assert 0 < len(back) < len(test) and set(back.video_id) <= set(test.video_id)
    # Saved from Lab, the notebook keeps the metadata it was committed with (nbdev's pre-save hook, as `make lab`)
    saved = json.loads((tmp_path / "lab" / EXPLORER.name).read_text())
    assert saved["metadata"] == json.loads(EXPLORER.read_text())["metadata"], saved["metadata"]


def _drive_explorer(page, notebook, idle, expect, test) -> Path:
    # The last explorer of the notebook is the one with search and selection.
    box = notebook.locator("input[placeholder='search clips by text']").last
    _center(box)
    box.fill(test.caption_true[5])
    box.press("Enter")                                                     # the value is sent on Enter
    first = notebook.locator("table.ivnb-results").last.locator("tr").nth(1)
    expect(first).to_contain_text(test.clip_id[5], timeout=60_000)         # the clip whose caption it is, ranked first
    # Lasso the left half of the map: a closed path dragged over the plot area (dragmode is lasso).
    plot = notebook.locator(".js-plotly-plot").last
    _center(plot)
    expect(plot.locator(".scatterlayer .point")).not_to_have_count(0)      # the map is drawn (SVG at this size)
    summary = notebook.locator(".widget-html-content", has_text="clips selected").last
    before = summary.inner_text()                                          # the notebook's own last selection
    area = plot.locator(".nsewdrag").first.bounding_box()
    x0, y0, w, h = area["x"], area["y"], area["width"], area["height"]
    path = [(x0 + 2, y0 + 2), (x0 + w * 0.5, y0 + 2), (x0 + w * 0.5, y0 + h - 2), (x0 + 2, y0 + h - 2), (x0 + 2, y0 + 3)]
    page.mouse.move(*path[0])
    page.mouse.down()
    for x, y in path[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    expect(summary).not_to_have_text(before, timeout=60_000)               # the kernel took the lasso's points
    expect(idle).to_have_count(1)                                          # ... from every trace (one call each)
    page.wait_for_timeout(1000)
    n = int(re.search(r"([\d,]+)\s+of\s+[\d,]+\s+clips selected", summary.inner_text())[1].replace(",", ""))
    assert 0 < n < len(test), f"the lasso selected {n} clips; see {EXPLORER_SHOT}"
    # Name the subset and export it as jsonl; the panel says where it went.
    name = notebook.locator(".widget-text", has_text="subset").last.locator("input")
    name.fill("lassoed")
    name.press("Tab")
    notebook.locator("button", has_text=re.compile(r"^export$")).last.click()
    msg = notebook.locator(".widget-html-content", has_text="wrote").last
    expect(msg).to_contain_text(f"wrote {n} clips to", timeout=60_000)
    expect(idle).to_have_count(1)
    _center(plot)
    page.screenshot(path=str(EXPLORER_SHOT))
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^File$")).click()   # File > Save: the pre-save hook runs
    page.locator(".lm-Menu-item", has_text=re.compile(r"^Save Notebook")).first.click()
    page.wait_for_timeout(3000)
    return Path(re.search(r"to (\S+lassoed\.jsonl)", msg.inner_text())[1])
