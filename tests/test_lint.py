"""The project's own code passes its linter (ruff.toml) and its layer rule (.importlinter)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from tests.conftest import ROOT

PACKAGES = ("pipeline", "trainer", "tokenizer_training", "transforms", "infra", "schemas")
# Plain functions that processes other than Beam's call (datatrove's side of the peer benchmarks).
BEAM_FREE_MODULES = (
    "transforms.tokens",
    "transforms.dedup_keys",
    "transforms.language_extensions",
    "transforms.quality_checks",
    "transforms.sources.file_decoding",
)


def test_code_passes_ruff():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


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


@pytest.mark.slow  # imports Beam, torch and transformers in a fresh interpreter
def test_every_benchmark_script_imports():
    """The benchmarks are not run by the tests; a name they import from a sibling must still exist."""
    bench = Path(ROOT) / "bench"
    names = sorted(p.stem for p in bench.glob("*.py"))
    code = "import importlib\n" + "".join(f"importlib.import_module({name!r})\n" for name in names)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(ROOT), str(bench))))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
