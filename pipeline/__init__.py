"""The CLI, run orchestration, the graph that wires stages, the stage adapters, report and diff."""

from infra.release import PACKAGE_VERSION as __version__  # noqa: F401
