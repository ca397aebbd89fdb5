"""Errors every layer raises and the CLI turns into one clear line."""


class ConfigError(ValueError):
    """A configuration problem, phrased as what to change."""
