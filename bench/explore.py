"""`make bench` section `explore`: the explorer, search and selection on synthetic embeddings of 10^4, 10^5 and 10^6
clips, each size in a fresh process (its peak memory is its own); UMAP fit + transform time; the approximate
index's recall@10 against exact search; exact float16 search in faiss against numpy, side by side."""
import argparse, json, subprocess, sys, time
import numpy as np
import pandas as pd

MOTIONS = ("left", "right", "up", "down", "still", "zoom_in", "zoom_out", "rotate_cw", "rotate_ccw")


def synthetic(n: int, dim: int = 512, seed: int = 0, centres: int = 200) -> np.ndarray:
    "Clustered unit vectors, like a corpus's embeddings: 200 topics and noise around each."
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        out[s : s + m] = c[rng.integers(0, centres, m)] + 0.8 * rng.standard_normal((m, dim)).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def points_table(n: int, seed: int = 0) -> pd.DataFrame:
    "A clip table with map positions, scores and a category, and paths that do not exist (no decoding is timed)."
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 600, n).round(3)
    return pd.DataFrame({
        "clip_id": [f"clip{i:07d}" for i in range(n)], "video_id": [f"vid{i // 20:06d}" for i in range(n)],
        "path": "/nonexistent/clip.mp4", "start": start, "end": start + rng.uniform(2, 20, n).round(3),
        "caption": [f"a person does thing number {i % 977}" for i in range(n)],
        "sim_score": rng.normal(0.35, 0.05, n), "aes_score": rng.normal(5, 1, n),
        "motion": rng.choice(MOTIONS, n), "x": rng.normal(0, 5, n), "y": rng.normal(0, 5, n), "kind": "video",
    })


class QueryModel:
    "A VideoTextModel stand-in for timing: a query's embedding is a stored clip's plus noise."
    name = "query-stand-in"

    def __init__(self, emb):
        self.emb = emb

    def encode_text(self, texts):
        rng = np.random.default_rng(len(texts[0]))
        return self.emb[[7]] + 0.05 * rng.standard_normal((1, self.emb.shape[1])).astype(np.float32)


def _best(fn, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(n: int) -> dict:
    "One size, in this process: first draw, search, selection update, recolour, memory."
    import plotly.io as pio
    from types import SimpleNamespace
    from internvid_nb.ui.explorer import EmbeddingExplorer

    t = time.perf_counter()
    import plotly.graph_objects as go

    go.FigureWidget  # noqa: B018  (plotly imports its widget module on first use: 5 s here, once per kernel)
    imports = time.perf_counter() - t
    import psutil

    emb, pts = synthetic(n), points_table(n)
    rss0 = psutil.Process().memory_info().rss / 2**20
    t = time.perf_counter()
    ex = EmbeddingExplorer(pts, color="motion", video_emb=emb, model=QueryModel(emb))
    built = time.perf_counter() - t
    t = time.perf_counter()
    payload = pio.to_json(ex.fig, validate=False)  # what the browser receives to draw
    serialised = time.perf_counter() - t
    search = _best(lambda: ex.search_text("a person does thing number 7", 12))
    found_first = ex.found.clip_id.iloc[0] == "clip0000007"
    chosen = np.flatnonzero(pts.x.to_numpy() < np.quantile(pts.x, 0.1))  # a lasso around a tenth of the map
    select = _best(lambda: ex._selected(ex.fig.data[0], SimpleNamespace(point_inds=chosen.tolist())))
    recolour = _best(lambda: setattr(ex.color, "value", "sim_score" if ex.color.value != "sim_score" else "motion"))
    rss = psutil.Process().memory_info().rss / 2**20
    return {"clips": n, "widget_import_s_once": round(imports, 2), "first_draw_s": round(built + serialised, 3), "build_s": round(built, 3),
            "serialise_s": round(serialised, 3), "payload_mib": round(len(payload) / 2**20, 1),
            "text_search_s": round(search, 4), "query_clip_ranked_first": bool(found_first),
            "selection_update_s": round(select, 3), "selected": int(len(ex.selection)),
            "recolour_s": round(recolour, 3), "kernel_rss_mib": round(rss), "explorer_adds_mib": round(rss - rss0),
            "hover_text_sent": bool(ex.fig.data[0].hovertext is not None)}


def search_comparison(n: int = 1_000_000, queries: int = 20) -> dict:
    "Exact float16 search: faiss's flat float16 index against numpy (float16 blocks to float32, matrix product)."
    from internvid_nb.data.search import ClipSearch, top_k

    emb = synthetic(n)
    q = emb[:queries] + 0.05
    cs = ClipSearch(emb, exact_limit=n)
    e16 = emb.astype(np.float16)
    del emb

    def numpy_exact(qv):
        best_i = best_s = None
        for s in range(0, n, 65536):
            i, v = top_k((e16[s : s + 65536].astype(np.float32) @ qv.T).T, 10)
            i = i + s
            if best_i is None:
                best_i, best_s = i, v
            else:
                j, best_s = top_k(np.concatenate([best_s, v], 1), 10)
                best_i = np.take_along_axis(np.concatenate([best_i, i], 1), j, 1)
        return best_i

    qn = q[:1] / np.linalg.norm(q[:1], axis=1, keepdims=True)
    t_np = _best(lambda: numpy_exact(qn))
    t_faiss = _best(lambda: cs.exact(qn, 10))
    same = (numpy_exact(qn) == cs.exact(qn, 10)[0]).mean()
    t = time.perf_counter()
    cs.build()
    build = time.perf_counter() - t
    t_ivf = _best(lambda: cs.search(qn, 10, exact=False))
    rec = cs.recall(q, 10)
    return {"clips": n, "numpy_exact_s": round(t_np, 3), "faiss_exact_s": round(t_faiss, 3),
            "ratio_numpy_vs_faiss": round(t_np / t_faiss, 1), "same_top10_share": float(same),
            "ivf_build_s": round(build, 1), "ivf_nlist": cs.nlist, "ivf_nprobe": cs.nprobe,
            "ivf_search_s": round(t_ivf, 4), "ivf_recall_at_10": round(rec, 3)}


def umap_time(n: int) -> dict:
    from internvid_nb.ui.explorer import umap_2d

    x = synthetic(n)
    t = time.perf_counter()
    umap_2d(x, fit_on=20_000)
    return {"clips": n, "fit_on": min(n, 20_000), "seconds": round(time.perf_counter() - t, 1)}


def _child(kind: str, n: int) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", kind, str(n)], capture_output=True, text=True)
    if r.returncode:
        return {"clips": n, "error": r.stderr.strip().splitlines()[-1:] or [f"exit {r.returncode}"]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def bench_explore(sizes=(10_000, 100_000, 1_000_000), umap_sizes=(10_000, 100_000)) -> dict:
    out = {"explorer": [_child("measure", n) for n in sizes]}
    out["umap"] = [_child("umap", n) for n in umap_sizes]
    out["search"] = _child("search", max(sizes))
    out["goals"] = {"search_s_at_1e5": 1.0, "redraw_s_at_1e5": 2.0}
    out["note"] = ("first draw = building the FigureWidget + serialising it (what the browser receives); the browser's own "
                   "WebGL draw is not timed here (tests/test_lab.py drives a real browser). UMAP is timed in its own "
                   "process, numba compilation included")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=2)
    a = ap.parse_args()
    if a.child:
        kind, n = a.child[0], int(a.child[1])
        res = {"measure": measure, "umap": umap_time, "search": search_comparison}[kind](n)
        print(json.dumps(res))
    else:
        print(json.dumps(bench_explore(), indent=1))
