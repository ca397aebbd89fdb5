"""Line wrapping for plain text paragraphs."""


def split_words(text):
    return [word for word in text.split() if word]


def wrap(text, width=72):
    """Greedy wrapping: each line takes as many words as fit in width."""
    lines, current = [], []
    for word in split_words(text):
        if current and len(" ".join(current + [word])) > width:
            lines.append(" ".join(current))
            current = []
        current.append(word)
    if current:
        lines.append(" ".join(current))
    return lines


def fill(text, width=72, separator="\n"):
    return separator.join(wrap(text, width))


def indent(text, prefix="    "):
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def shorten(text, width=72, placeholder="..."):
    words = wrap(text, width - len(placeholder))
    return words[0] + placeholder if len(words) > 1 else text
