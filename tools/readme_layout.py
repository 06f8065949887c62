"""The README's layout table, made from the notebooks themselves: one row per notebook with its module and its
one-line summary (the `> ` line under its title), grouped by subpackage. `make readme` does not call it; paste its
output into nbs/index.ipynb when a notebook is added or its summary changes (tests/test_structure.py checks)."""
import json
import re
import sys
from pathlib import Path

FOLDERS = {  # subpackage -> what lives there, in the order data flows
    "data": "tables, video I/O, schema, shards: what every stage reads and writes",
    "models": "the models behind small protocols, and the one loader of names, folders and Hugging Face ids",
    "curation": "segment, caption, score and select: raw videos to a curated corpus",
    "training": "the training plumbing and ViCLIP's training",
    "evaluation": "zero-shot, retrieval, the generation metrics and the quality-score check",
    "generation": "training the text-to-video model",
    "scale": "the runner and its engines (local processes, Ray)",
    "pipeline": "configs, run_pipeline, the report, the `internvid` command and the demo",
    "ui": "widgets: inspector, explorer, gallery, live plots",
    "world": "the sample world and everything that reads its ground truth (not imported by the library)",
}


def notebook_rows(nbs: Path) -> list[tuple[str, str, str]]:
    "(notebook, module, summary) for every notebook but the README's, in layout order."
    rows = []
    for folder in [""] + list(FOLDERS):
        for notebook in sorted((nbs / folder).glob("*.ipynb")):
            if notebook.name == "index.ipynb":
                continue
            cells = json.loads(notebook.read_text())["cells"]
            text = "".join(cells[0]["source"])
            summary = re.search(r"^> (.*)$", text, re.M)
            module = next((m.group(1) for c in cells if (m := re.match(r"#\s*\|\s*default_exp\s+(\S+)", "".join(c["source"])))), "")
            module = "internvid_nb" if module == "__init__" else f"internvid_nb.{module}"
            rows.append((notebook.relative_to(nbs).as_posix(), module, summary.group(1) if summary else ""))
    return rows


def layout_table(nbs: Path) -> str:
    "The markdown table of the layout."
    lines = ["| notebook | module | what it does |", "|---|---|---|"]
    current = None
    for notebook, module, summary in notebook_rows(nbs):
        folder = notebook.split("/")[0] if "/" in notebook else ""
        if folder != current and folder:
            lines.append(f"| **{folder}/** | | *{FOLDERS[folder]}* |")
        current = folder
        lines.append(f"| `{notebook}` | `{module}` | {summary} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(layout_table(Path(sys.argv[1] if len(sys.argv) > 1 else "nbs")))
