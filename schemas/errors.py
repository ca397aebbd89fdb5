"""Errors every layer raises and the CLI turns into one clear line."""


class ConfigError(ValueError):
    """A configuration problem, phrased as what to change."""


class EmptyCorpusError(ConfigError):
    """The corpus kept no document, so a later stage has nothing to work on; the version is kept to show why."""
