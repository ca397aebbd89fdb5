"""The CLI, configuration, the graph that wires stages, and the dataset-version writer."""

__version__ = "0.1.0"

from pipeline.storage import connect_anonymously_to_emulator  # noqa: E402  (every process, Beam workers too)

connect_anonymously_to_emulator()
