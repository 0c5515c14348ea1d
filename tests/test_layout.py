"""The package's folders are layers: every import (lazy and type-only ones included) points down or sideways.

foundation (errors, options, fileio, imageio, progress, result) < models < weights < engine < video
< jobs < the interfaces (api, preview, _cli). Training (animevid.train) sits beside jobs: it reads
films and runs generators, and nothing but the command line imports it. Read from the source with
``ast``, so a lazy import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests import CHECKOUT

FOUNDATION = {"errors", "options", "fileio", "imageio", "progress", "result"}
LAYERS = {"models": 1, "weights": 2, "engine": 3, "video": 4, "jobs": 5, "train": 5}
INTERFACE = 6
PACKAGE_FOLDERS = {"models", "weights", "engine", "video", "jobs", "_cli"}


def module_files() -> dict[str, Path]:
    files = {}
    for root, prefix in ((CHECKOUT / "animevid", ["animevid"]), (CHECKOUT / "train", ["animevid", "train"])):
        for path in root.rglob("*.py"):
            parts = prefix + list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = path
    return files


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return INTERFACE  # the package itself: the public names
    if parts[1] in FOUNDATION:
        return 0
    return LAYERS.get(parts[1], INTERFACE)


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Every animevid module ``module`` imports, wherever the import statement is."""
    package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            submodules = [f"{origin}.{alias.name}" for alias in node.names]
            # `from animevid import imageio` imports the module, not the package's public names
            targets = submodules if all(name in known for name in submodules) else [origin, *submodules]
        else:
            continue
        found.update(target for target in targets if target in known and target != module)
    return found


GRAPH = {module: imports(module, path, set(module_files())) for module, path in module_files().items()}


def test_the_architecture_has_its_folders():
    present = {path.name for path in (CHECKOUT / "animevid").iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert PACKAGE_FOLDERS <= present
    top_modules = {path.stem for path in (CHECKOUT / "animevid").glob("*.py")} - {"__init__", "__main__"}
    assert top_modules - FOUNDATION <= {"api", "preview", "ui"}, "a module at the top that belongs in a layer's folder"


def test_imports_point_down_the_layers():
    upward = [f"{m} -> {t}" for m in sorted(GRAPH) for t in sorted(GRAPH[m]) if layer(t) > layer(m)]
    assert not upward, f"imports of a higher layer: {upward}"


def test_training_is_imported_only_by_the_command_line():
    users = sorted(m for m, targets in GRAPH.items() if any(t.startswith("animevid.train") for t in targets))
    assert all(m.startswith(("animevid.train", "animevid._cli")) for m in users), users


def test_no_import_cycles():
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(GRAPH.get(module, ())):
            if target not in GRAPH:
                continue
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target] if target in path else [module, target]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_the_layer_rule_catches_an_upward_import(tmp_path):
    """The check above is not vacuous: an engine module importing the video pipeline is found."""
    fake = tmp_path / "stylizer.py"
    fake.write_text("def f():\n    from ..video.pipeline import stylize_video\n")
    found = imports("animevid.engine.stylizer", fake, set(module_files()))
    assert "animevid.video.pipeline" in found and layer("animevid.video.pipeline") > layer("animevid.engine.stylizer")
