"""Scrub stage: email addresses (paper footnote 7), and secrets and IP addresses (beyond it).

Emails are replaced with removed@example.com, as the paper does. Beyond the paper, as
StarCoder's PII step does, secrets (API keys, tokens, private keys) become `<KEY>` and
public IPv4 and IPv6 addresses `<IP_ADDRESS>`; `scrub.secrets` and `scrub.ip_addresses`
turn those off. What counts as each, and what look-alikes stay, is said where they are
found: `transforms.cleaning.pii.emails`, `transforms.cleaning.pii.secrets` (secrets, `transforms.cleaning.pii.private_keys`) and
`transforms.cleaning.pii.ip_addresses`; `bench/bench_pii.py` measures them on a labelled benchmark.
A replacement takes the value alone: quotes, key names and the rest of the line stay.

The same `scrub_text` cleans code files here and StackOverflow bodies and comments in
the StackOverflow format stage. Stats count each replacement kind (`replaced-email`,
`replaced-ipv4`, `replaced-ipv6`, and per secret issuer `replaced-aws-key-id`,
`replaced-private-key`, `replaced-github`, ...) and the files changed; they land in
the manifest. The stage never rejects.
"""

from __future__ import annotations

import collections

from schemas import stage_names
from schemas.config import ScrubConfig
from schemas.records import RepoFile
from transforms.base import RecordFn
from transforms.cleaning.pii import emails, ip_addresses, prefilter, secrets

REPLACEMENT = ScrubConfig.replacement  # removed@example.com, paper footnote 7
EMAIL = "email"
WARM_UP_TEXT = "ops@corp.io 52.14.3.9 2a00:1450::1"


def find_pii(text: str, config: ScrubConfig) -> list[secrets.Finding]:
    """Every email, secret and public IP address in text that `config` scrubs, sorted, none overlapping.
    Each finder runs only where the prefilter saw a candidate of its kind."""
    data = text.encode()
    kinds = prefilter.candidate_kinds(data)
    found = []
    if EMAIL in kinds:
        found += [secrets.Finding(start, end, EMAIL, EMAIL) for start, end in emails.find_emails(text)]
    if config.secrets and secrets.SECRET in kinds:
        found += secrets.find_secrets(text, data)
    if config.ip_addresses and kinds & {ip_addresses.IPV4, ip_addresses.IPV6}:
        addresses = ip_addresses.find_addresses(text, ip_addresses.IPV4 in kinds, ip_addresses.IPV6 in kinds)
        found += [secrets.Finding(start, end, kind, kind) for start, end, kind in addresses]
    return secrets.non_overlapping(found)


def warm_up(config: ScrubConfig) -> None:
    """Build what scrubbing needs (the Public Suffix List, the prefilter, Kingfisher's rules) now,
    not on the first text that needs it."""
    find_pii(f"{WARM_UP_TEXT} {secrets.WARM_UP}", config)


def replacement(finding: secrets.Finding, config: ScrubConfig) -> str:
    if finding.kind == EMAIL:
        return config.replacement
    return config.key_replacement if finding.kind == secrets.SECRET else config.ip_replacement


def stat_kind(finding: secrets.Finding) -> str:
    """`email`, `ipv4`, `ipv6`, or a secret's subkind (`aws-key-id`, `private-key`, ...)."""
    return finding.subkind if finding.kind == secrets.SECRET else finding.kind


def scrub_emails(text: str, replacement: str = REPLACEMENT) -> tuple[str, int]:
    """(text with every email address replaced, number of addresses replaced)."""
    text, replaced = scrub_text(text, ScrubConfig(replacement=replacement, secrets=False, ip_addresses=False))
    return text, replaced[EMAIL]


def scrub_text(text: str, config: ScrubConfig) -> tuple[str, collections.Counter]:
    """(text with every email, secret and IP address replaced as `config` says, replacements per kind)."""
    replaced: collections.Counter = collections.Counter()
    parts, last = [], 0
    for finding in find_pii(text, config):
        value = replacement(finding, config)
        if text[finding.start : finding.end] == value:
            continue  # already scrubbed
        parts += [text[last : finding.start], value]
        last = finding.end
        replaced[stat_kind(finding)] += 1
    if not replaced:
        return text, replaced
    parts.append(text[last:])
    return "".join(parts), replaced


def count_replacements(fn: RecordFn, replaced: collections.Counter) -> None:
    """Add a text's replacements to a stage's stats, one `replaced-<kind>` stat per kind."""
    for kind, n in replaced.items():
        fn.count(f"replaced-{kind}", n)


class ScrubFn(RecordFn):
    """Replace emails, secrets and IP addresses in a file's content; counts what it replaced."""

    stage = stage_names.SCRUB

    def __init__(self, config: ScrubConfig = ScrubConfig()):
        self.config = config

    def setup(self) -> None:
        warm_up(self.config)

    def __call__(self, record: RepoFile) -> RepoFile:
        text, replaced = scrub_text(record.content, self.config)
        if not replaced:
            return record
        count_replacements(self, replaced)
        self.count("files-changed")
        return record.replace(content=text)
