"""The CLI, configuration, the graph that wires stages, and the dataset-version writer."""

__version__ = "0.1.0"
