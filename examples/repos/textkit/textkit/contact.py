"""Who to ask about textkit, and how release notes are mailed."""

MAINTAINERS = {
    "Jane Doe": "jane.doe@textkit-dev.org",
    "Ravi Kumar": "ravi.kumar@mail.textkit-dev.org",
}
RELEASE_LIST = "releases+announce@lists.textkit-dev.org"


def mailto(name: str) -> str:
    """A mailto: link for one maintainer."""
    return "mailto:" + MAINTAINERS[name]


def signature(name: str) -> str:
    # Used at the end of release notes: "Jane Doe <jane.doe@textkit-dev.org>"
    return f"{name} <{MAINTAINERS[name]}>"
