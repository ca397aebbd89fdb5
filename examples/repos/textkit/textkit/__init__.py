"""textkit: small string helpers."""

from textkit.strings import slugify, truncate, word_counts

__all__ = ["slugify", "truncate", "word_counts"]
__version__ = "1.2.0"
