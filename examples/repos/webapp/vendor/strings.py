import re
import unicodedata
from typing import Dict


def slugify(value: str, separator: str = "-") -> str:
    """Turn a title into a lower-case URL slug."""
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(r"[-\s]+", separator, value)


def truncate(text: str, width: int, suffix: str = "...") -> str:
    """Shorten text to at most width characters, ending with suffix."""
    if len(text) <= width:
        return text
    return text[: max(0, width - len(suffix))] + suffix


def word_counts(text: str) -> Dict[str, int]:
    """Count the number of occurrences of each word in the text."""
    counts: Dict[str, int] = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    return counts
