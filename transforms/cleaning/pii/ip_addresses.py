"""Public IPv4 and IPv6 addresses in text (beyond the paper, as StarCoder's PII step).

An address is replaced when Python's `ipaddress` calls it public unicast (`is_global`,
not multicast; an IPv6 one also inside 2000::/3, the global unicast range) and it is
not one of the well-known public resolvers (they identify no one). Private, loopback,
link-local, documentation and reserved ranges stay.

Whether a dotted quad is an address or a version or OID is decided by its context, not
by the character before it: the quad must stand alone (no digit, letter or dot
attached on either side, so `1.2.840.113549.1.1.11`, `v1.2.3.4` and `model-1.2.3.4.bin`
are not addresses; a full stop after one ends a sentence), and its line must not speak
of versions, OIDs or sections of a standard near it (`version`, `release`, `install`,
`@since`, `ObjectIdentifier`, `oid`, `§`, `RFC`, `NIST`, `X.690`, ...), nor
may it follow a pin (`==`, `^`), an image tag or Maven coordinate (`image:9.3.0.25`,
`group:artifact:9.3.0.25`), a product token (`agent/1.2.3.4`) or a `see `
(`see 7.9.2.2`). So `HOST=...`, `--host=...`, `ssh user@...`, `"metrics:..."` and an
address ending a sentence are replaced. A `:port` or `/prefix` after one stays.
"""

from __future__ import annotations

import functools
import ipaddress
import re

IPV4, IPV6 = "ipv4", "ipv6"
RESOLVERS = frozenset(
    {"8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112", "208.67.222.222", "208.67.220.220",
     "2001:4860:4860::8888", "2001:4860:4860::8844", "2606:4700:4700::1111", "2606:4700:4700::1001",
     "2620:fe::fe", "2620:fe::9"}
)  # fmt: skip
GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
# The last three groups of a dotted quad: a pattern that starts with a literal is one
# the regex engine skips to fast; the first group and the quad's edges are checked after.
_DOTS = re.compile(r"\.\d{1,3}\.\d{1,3}\.\d{1,3}")
DIGITS = frozenset("0123456789")
_V6 = re.compile(r"(?<![\w:.])[23][0-9A-Fa-f]{0,3}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:]|\.\d)")
_VERSION_WORDS = re.compile(
    r"version|release|upgrade|install|changelog|pinned|\bpins?\b|@since|\bver\b|objectidentifier|\boids?\b|asn\.?1|"
    r"section|clause|chapter|§|\brfc|\bnist\b|\biso\b|\bitu\b|\bx\.\d{3}",  # a section of a standard
    re.IGNORECASE,
)
# Written right before a version: a pin (`==`, `~=`, `^`), an image tag or Maven coordinate
# (`image:`, `group:artifact:`), a product token (`agent/`), a reference (`see 7.9.2.2`).
_VERSION_BEFORE = re.compile(r"(?:[=~!<>]=\s*|[\^~]|[\w.-]+/[\w./-]*:|[\w.-]+:[\w.-]+:|(?<![/\w.-])[A-Za-z][\w.-]*/|\b[Ss]ee )\Z")
WORDS_BEFORE, WORDS_AFTER = 60, 25  # how far on its line a version word counts
# A quad whose first arc is 0-2 is an OID where the text near it speaks of OIDs or ASN.1
# (`'2.5.4.3': 'commonName'` in a table of them).
_OID_NEARBY = re.compile(r"\boids?\b|_oid|oid_|objectidentifier|object identifier|asn\.?1|x\.?509", re.IGNORECASE)
OID_WINDOW = 2000


@functools.lru_cache(maxsize=65536)
def public_kind(value: str) -> str | None:
    """`ipv4` / `ipv6` for a public unicast address that is not a resolver, else None."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if not address.is_global or address.is_multicast or value in RESOLVERS:
        return None
    if address.version == 6 and address not in GLOBAL_UNICAST_V6:
        return None
    return IPV4 if address.version == 4 else IPV6


def written_as_version(text: str, start: int, end: int) -> bool:
    """Whether the quad at text[start:end] is written as a version, OID, tag or coordinate."""
    line_start = max(text.rfind("\n", 0, start) + 1, start - WORDS_BEFORE)
    line_end = text.find("\n", end, end + WORDS_AFTER)
    if _VERSION_WORDS.search(text, line_start, end + WORDS_AFTER if line_end < 0 else line_end):
        return True
    if _VERSION_BEFORE.search(text, line_start, start):
        return True
    first_arc_oid_like = text[start] in "012" and text[start + 1] == "."
    return first_arc_oid_like and bool(_OID_NEARBY.search(text, max(0, start - OID_WINDOW), end + OID_WINDOW))


def standalone_quad(text: str, match: re.Match) -> tuple[int, int] | None:
    """(start, end) of the dotted quad whose last three groups `match` found, when it stands alone:
    no letter, digit, `_` or `.` attached before it, none after it but a sentence's full stop."""
    start = match.start()
    while start > max(0, match.start() - 3) and text[start - 1] in DIGITS:
        start -= 1
    end = match.end()
    if start == match.start() or (start > 0 and (text[start - 1].isalnum() or text[start - 1] in "._")):
        return None
    after = text[end : end + 2]
    if after[:1].isalnum() or after[:1] == "_" or (after[:1] == "." and (after[1:].isalnum() or after[1:] == "_")):
        return None
    return start, end


def find_addresses(text: str, ipv4: bool = True, ipv6: bool = True) -> list[tuple[int, int, str]]:
    """(start, end, kind) of each public IPv4 and IPv6 address in text, as the module docstring says."""
    found = []
    if ipv4:
        for m in _DOTS.finditer(text):
            span = standalone_quad(text, m)
            if span and public_kind(text[span[0] : span[1]]) == IPV4 and not written_as_version(text, *span):
                found.append((*span, IPV4))
    if ipv6:
        for m in _V6.finditer(text):
            value = m.group()
            if ("::" in value or value.count(":") == 7) and public_kind(value) == IPV6:
                found.append((m.start(), m.end(), IPV6))
    return found
