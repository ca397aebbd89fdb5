"""The bundled sample built once per DirectRunner mode, shared by this folder's tests."""

from __future__ import annotations

import pytest

from tests.conftest import DIRECT_MODES, SAMPLE_CONFIG, run_cli


@pytest.fixture(scope="session")
def sample_version(tmp_path_factory):
    """mode → the version the README's command builds (corpus, tokenizer, binarize) in that mode."""
    built = {}

    def build(mode: str = "in_memory"):
        if mode not in built:
            out = tmp_path_factory.mktemp(f"sample-{mode}")
            proc = run_cli("run", "--config", SAMPLE_CONFIG, "--out", str(out), *DIRECT_MODES[mode])
            built[mode] = (out / "sample" / "v0001", proc)
        return built[mode]

    return build
