"""Stage names are declared once, in schemas/stage_names.py, and every stage takes its own from there."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import transforms
from schemas import stage_names
from tests.conftest import ROOT
from transforms.base import RecordFn

PRODUCT = ("pipeline", "trainer", "tokenizer_training", "transforms", "infra", "schemas")


def record_fns() -> list[type]:
    """Every RecordFn class of transforms/, its modules imported."""
    for info in pkgutil.walk_packages(transforms.__path__, "transforms."):
        importlib.import_module(info.name)
    found, todo = [], [RecordFn]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return [fn for fn in found if fn.__module__.startswith("transforms.")]


def test_every_record_stage_names_a_declared_stage():
    fns = record_fns()
    assert len(fns) >= 15, [fn.__name__ for fn in fns]  # the sources' readers, cleaning, dedup, formatting, StackOverflow
    undeclared = {fn.__qualname__: fn.stage for fn in fns if fn.stage not in stage_names.COUNTED_STAGES}
    assert undeclared == {}


def test_every_declared_corpus_stage_has_a_record_fn():
    assert set(stage_names.CORPUS_STAGES) == {fn.stage for fn in record_fns()}


def test_the_names_are_distinct():
    names = [v for k, v in vars(stage_names).items() if k.isupper() and isinstance(v, str)]
    assert len(names) == len(set(names)), names
    assert len(set(stage_names.COUNTED_STAGES)) == len(stage_names.COUNTED_STAGES)


def spelled_stage_names(path: Path) -> list[str]:
    """`stage = "..."` or `SOME_STAGE = "..."` with a string literal: a name declared outside stage_names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                name = getattr(target, "id", None) or getattr(target, "attr", None) or ""
                if name == "stage" or name.endswith("STAGE"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name} = {node.value.value!r}")
    return found


def test_no_product_module_spells_a_stage_name_of_its_own():
    own = Path(stage_names.__file__)
    paths = [p for package in PRODUCT for p in sorted((Path(ROOT) / package).rglob("*.py")) if p != own]
    assert [line for p in paths for line in spelled_stage_names(p)] == []
