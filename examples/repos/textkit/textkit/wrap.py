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


def fill(text, width=72):
    return "\n".join(wrap(text, width))


def indent(text, prefix="    "):
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def dedent_all(text):
    return "\n".join(line.strip() for line in text.splitlines())
