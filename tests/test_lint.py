"""The project's own code passes its linter (ruff.toml) and its layer rule (.importlinter)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import grimp

from tests.conftest import ROOT

PACKAGES = ("pipeline", "trainer", "tokenizer_training", "transforms", "infra", "schemas")
# Plain functions that processes other than Beam's call (datatrove's side of the peer benchmarks).
BEAM_FREE_MODULES = (
    "transforms.dedup.tokens",
    "transforms.dedup.exact_keys",
    "transforms.cleaning.language_extensions",
    "transforms.cleaning.quality_checks",
    "transforms.sources.file_decoding",
)


def test_code_passes_ruff():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_code_is_formatted_as_ruff_formats_it():
    proc = subprocess.run([sys.executable, "-m", "ruff", "format", "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # `ruff format .` rewrites what it names


def test_layers_import_only_downward():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph(*PACKAGES)
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycles.append(" -> ".join((module, *back)))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_plain_function_modules_do_not_load_beam():
    code = "import sys\n" + "".join(f"import {name}\n" for name in BEAM_FREE_MODULES)
    code += "print(sorted(m for m in sys.modules if m.split('.')[0] == 'apache_beam'))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]", f"Beam modules loaded: {proc.stdout[:500]}"


def top_level_names(path: Path) -> set[str]:
    """What a module defines or imports at its top level (what `from it import name` can name)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def test_every_name_a_benchmark_imports_from_the_project_exists():
    """The benchmarks are not run by the tests; a name they import from a sibling script or
    a project module must still be there after the code moves (read statically: no imports)."""
    bench, missing = Path(ROOT) / "bench", []
    for script in sorted(bench.glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
                continue
            parts = node.module.split(".")
            candidates = [bench / f"{node.module}.py"] if len(parts) == 1 else []
            candidates += [Path(ROOT, *parts).with_suffix(".py"), Path(ROOT, *parts, "__init__.py")]
            module = next((c for c in candidates if c.is_file()), None)
            if module is None:
                continue  # a third-party module
            names = top_level_names(module)
            for alias in node.names:
                submodule = Path(ROOT, *parts, alias.name)
                if alias.name not in names and not submodule.with_suffix(".py").is_file() and not submodule.is_dir():
                    missing.append(f"{script.name}: {node.module}.{alias.name}")
    assert not missing, missing
