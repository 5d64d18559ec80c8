"""The package layers (README 'Layout'): each module imports only its own layer and those below it, and no
import hides inside a function to dodge a cycle; `ecgmon train` loads neither the console nor aiomqtt."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("core", "segmentation", "models", "simulators", "monitor", "evaluation", "cli")


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(ecgmon module imported, inside a function) for every import of an ecgmon module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("ecgmon."):
                out.append((child.module, inside))
            elif isinstance(child, ast.Import):
                out.extend((a.name, inside) for a in child.names if a.name.startswith("ecgmon."))
            visit(child, inside)

    visit(tree, False)
    return out


def test_no_module_imports_a_layer_above_its_own_and_none_hides_an_import_in_a_function():
    wrong, hidden = [], []
    for layer in LAYERS:
        for path in sorted((ROOT / layer).glob("*.py")):
            for module, in_function in _imports(path):
                target = module.split(".")[1]
                assert target in LAYERS, f"{path}: imports {module}, outside the layers"
                if LAYERS.index(target) > LAYERS.index(layer):
                    wrong.append(f"{path.relative_to(ROOT)} imports {module}")
                # the CLI, the top layer, imports each subcommand's modules when it runs (start-up time);
                # nothing imports the CLI, so that is no cycle being dodged
                if in_function and layer != "cli":
                    hidden.append(f"{path.relative_to(ROOT)} imports {module} inside a function")
    assert not wrong, wrong
    assert not hidden, hidden


def _function_imports(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in names:
            for n in ast.walk(node):
                if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("ecgmon."):
                    out.append(n.module)
                elif isinstance(n, ast.Import):
                    out += [a.name for a in n.names]
    return out


def test_train_loads_neither_the_console_nor_aiomqtt():
    """Everything `ecgmon train` imports (both protocols), in a fresh interpreter."""
    mods = ["ecgmon.cli.main", *_function_imports(ROOT / "cli" / "main.py",
                                                  {"cmd_train", "cmd_train_records", "_read_records"})]
    assert "ecgmon.evaluation.crossval" in mods and "ecgmon.models.train" in mods
    code = ("import importlib, json, sys\n"
            "from ecgmon.cli.main import build_subparsers\n"
            "build_subparsers().parse_args(['train', '--out', 'x.pt'])  # as ecgmon train reads it\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                           check=True).stdout))
    assert "ecgmon.monitor.pipeline" in loaded  # the margin is calibrated through the live pipeline
    # (rich's own progress bar, which training shows, is not the monitor's console)
    assert not {m for m in loaded if m.startswith(("aiomqtt", "paho", "ecgmon.monitor.console", "ecgmon.monitor.app",
                                                   "ecgmon.monitor.mqtt"))}
