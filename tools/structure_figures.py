"""The package's structure in figures: import cycles, private names imported across modules, library modules that
import the sample world, module sizes, long lines, `;` chains and export-cell sizes. Prints JSON; `--check` exits 1
when a figure is over its limit (the limits of issue 18). Run by tests/test_structure.py, so CI keeps them."""
import argparse
import ast
import json
import re
import sys
from pathlib import Path
from statistics import median

LIMITS = {"cycles": 0, "private_imports": 0, "library_imports_of_world": 0, "largest_module_lines": 450,
          "share_lines_over_120": 0.01, "export_cell_median_lines": 15}
WORLD, ALLOWED_TO_IMPORT_WORLD = "internvid_nb.world", ("internvid_nb.demo",)


def modules(package: Path) -> dict[str, Path]:
    "Dotted module name -> file, for every exported module but nbdev's index."
    found = {}
    for path in sorted(package.rglob("*.py")):
        if path.name == "_modidx.py":
            continue
        name = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: dict) -> list[tuple[str, list[str]]]:
    "The package modules that `name` imports (at any depth), each with the names taken from it."
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(parts + ([base] if base else []))
            names = [alias.name for alias in node.names]
            out += [(f"{base}.{n}", []) for n in names if f"{base}.{n}" in known]
            if base in known:
                out.append((base, names))
        elif isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names if alias.name in known]
    return out


def cycles(edges: dict[str, set]) -> list[list[str]]:
    "Strongly connected components of more than one module (Tarjan)."
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def export_cells(nbs: Path) -> list[int]:
    "Line counts of the exported cells of every notebook."
    sizes = []
    for notebook in sorted(nbs.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in notebook.parts:
            continue
        for cell in json.loads(notebook.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and re.match(r"\s*#\s*\|\s*export", source):
                sizes.append(len(source.splitlines()))
    return sizes


def figures(root: Path) -> dict:
    "Every figure of the structure of the repository at `root`."
    known = modules(root / "internvid_nb")
    edges, private, lines, long_lines, chained, sizes = {}, [], 0, 0, 0, {}
    for name, path in known.items():
        text = path.read_text()
        sizes[name] = len(text.splitlines())
        lines += sizes[name]
        long_lines += sum(len(line) > 120 for line in text.splitlines())
        chained += sum(1 for t in _tokens(text) if t == ";")
        for target, names in imports(name, path, known):
            if target != name:
                edges.setdefault(name, set()).add(target)
                private += [f"{name} <- {target}.{n}" for n in names if n.startswith("_") and not n.startswith("__")]
    world_imports = sorted(f"{m} -> {t}" for m, ts in edges.items() for t in ts
                           if t.startswith(WORLD) and not m.startswith(WORLD) and m not in ALLOWED_TO_IMPORT_WORLD)
    cells = export_cells(root / "nbs")
    largest = max(sizes.items(), key=lambda kv: kv[1])
    return {"modules": len(known), "lines": lines, "largest_module": largest[0], "largest_module_lines": largest[1],
            "cycles": cycles(edges), "private_imports": private, "library_imports_of_world": world_imports,
            "share_lines_over_120": round(long_lines / max(lines, 1), 4), "semicolon_statements": chained,
            "export_cells": len(cells), "export_cell_median_lines": median(cells) if cells else 0}


def _tokens(text: str):
    "The operator tokens of a module (so that a ';' inside a string does not count)."
    import io
    import tokenize
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.OP:
            yield token.string


def over_limits(found: dict) -> list[str]:
    "The figures over their limits, each as 'name: value (limit)'."
    bad = []
    for key, limit in LIMITS.items():
        value = found[key]
        amount = len(value) if isinstance(value, list) else value
        if amount > limit:
            bad.append(f"{key}: {value} (limit {limit})")
    return bad


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", nargs="?", default=".", help="the repository (default: here)")
    parser.add_argument("--check", action="store_true", help="exit 1 naming each figure over its limit")
    args = parser.parse_args()
    found = figures(Path(args.root))
    print(json.dumps(found, indent=1))
    if args.check and (bad := over_limits(found)):
        print("over the limits:\n  " + "\n  ".join(bad), file=sys.stderr)
        sys.exit(1)
