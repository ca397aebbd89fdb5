"""Scrub stage: email addresses (paper footnote 7), and secrets and IP addresses (beyond it).

Emails are replaced with removed@example.com, as the paper does. Beyond the paper, as
StarCoder's PII step does, secrets (API keys, tokens, private keys) become `<KEY>` and
public IPv4 addresses `<IP_ADDRESS>`, found by detect-secrets (`transforms.pii`);
`scrub.secrets` and `scrub.ip_addresses` turn those off. The same `scrub_text` cleans
code files here and StackOverflow bodies and comments in the StackOverflow format
stage. Stats count each replacement kind (`replaced-email`, `replaced-aws-access-key`,
`replaced-private-key`, `replaced-ipv4`, ...) and the files changed; they land in the
manifest.

An address is `local@domain` where the local part is 1-64 of `A-Z a-z 0-9 . _ % + -`
and the domain is dot-separated labels ending in a top-level domain of the Public
Suffix List's ICANN section (the `publicsuffixlist` package ships it: `.com`,
`.engineering`, `.berlin`, `.xn--p1ai`, ...). Domains match whatever their case
(`x@y.Com`, `OPS@EXAMPLE.CO.UK`), except that a TLD written in mixed case other than
capitalised (`q@k.mT`, a transposed matrix product) is not taken for one. Requiring a
real TLD is what keeps code intact:

- `@decorator`, `@Override`, CSS `@media`: nothing before the `@`, never matched;
- matrix products `a@b.T`, `x@w.transpose()`, `q@k.mT`: `T`/`transpose` are not
  TLDs, `mT` is not written as a domain is, and a name followed by `(` is a call;
- package pins `lodash@4.17.21`, `node@sha256:...`: no TLD.

Judgment call, for ssh and URL user names: `git@github.com:owner/repo.git` (an
scp-style remote, `@host` followed by `:path`) and `ssh://git@host/...` or
`https://user@host/...` (a user name inside a URL) address an account on a host,
not a mailbox, and scrubbing them would break the code that uses them; they are
left as they are. `mailto:jane@example.org` is an address and is scrubbed.

Work per file is linear in its size: only the text around each `@` is examined for
emails, and detect-secrets' patterns each scan the text once. The stage never rejects.
"""

from __future__ import annotations

import collections
import functools
import re

from schemas.config import ScrubConfig
from schemas.records import RepoFile
from transforms import pii
from transforms.base import RecordFn

STAGE = "scrub"
REPLACEMENT = ScrubConfig.replacement  # removed@example.com, paper footnote 7
EMAIL = "email"

_LOCAL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}\Z")  # searched in text[at-64:at]
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(r"(?:%s\.)+(%s)(?![A-Za-z0-9_(-]|\.[A-Za-z0-9])" % (_LABEL, _LABEL))
_TOKEN_BEFORE = re.compile(r"[^\s\"'<>()\[\]{}]*\Z")  # the unbroken text before an address
_SCP_PATH = re.compile(r":[^\s\d]")  # `@host:path`, as in git@github.com:owner/repo.git
URL_LOOKBACK = 256


@functools.lru_cache(maxsize=1)
def _public_suffixes():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True, accept_unknown=False)


@functools.lru_cache(maxsize=4096)
def is_tld(label: str) -> bool:
    """A top-level domain of the ICANN list, written lower-case, upper-case or capitalised."""
    if not (label.islower() or label.isupper() or label.istitle()) or label.isdigit():
        return False
    return _public_suffixes().is_public(label.lower())


def is_host_account(text: str, start: int, end: int) -> bool:
    """Whether the address at text[start:end] is an ssh/URL user@host rather than a mailbox."""
    if _SCP_PATH.match(text, end):
        return True
    before = _TOKEN_BEFORE.search(text, max(0, start - URL_LOOKBACK), start)
    return before is not None and "://" in before.group()


def scrub_emails(text: str, replacement: str = REPLACEMENT) -> tuple[str, int]:
    """(text with every email address replaced, number of addresses replaced)."""
    at = text.find("@")
    if at < 0:
        return text, 0
    parts, last, replaced = [], 0, 0
    while at >= 0:
        local = _LOCAL.search(text, max(0, at - 64), at)
        domain = _DOMAIN.match(text, at + 1) if local else None
        if domain and not is_tld(domain.group(1)):
            domain = None
        if domain and not is_host_account(text, local.start(), domain.end()):
            if text[local.start() : domain.end()] != replacement:
                parts.append(text[last : local.start()])
                parts.append(replacement)
                last = domain.end()
                replaced += 1
            at = text.find("@", domain.end())
        else:
            at = text.find("@", at + 1)
    if not replaced:
        return text, 0
    parts.append(text[last:])
    return "".join(parts), replaced


def scrub_text(text: str, config: ScrubConfig) -> tuple[str, collections.Counter]:
    """(text with every email, secret and IP address replaced as `config` says, replacements per kind)."""
    replaced: collections.Counter = collections.Counter()
    text, emails = scrub_emails(text, config.replacement)
    if emails:
        replaced[EMAIL] = emails
    findings = (pii.find_secrets(text) if config.secrets else []) + (pii.find_ipv4(text) if config.ip_addresses else [])
    if not findings:
        return text, replaced
    parts, last = [], 0
    for finding in pii.non_overlapping(findings):
        parts += [text[last : finding.start], config.ip_replacement if finding.kind == pii.IPV4 else config.key_replacement]
        last = finding.end
        replaced[finding.kind] += 1
    parts.append(text[last:])
    return "".join(parts), replaced


def count_replacements(fn: RecordFn, replaced: collections.Counter) -> None:
    """Add a text's replacements to a stage's stats, one `replaced-<kind>` stat per kind."""
    for kind, n in replaced.items():
        fn.count(f"replaced-{kind}", n)


class ScrubFn(RecordFn):
    """Replace emails, secrets and IP addresses in a file's content; counts what it replaced."""

    stage = STAGE

    def __init__(self, config: ScrubConfig = ScrubConfig()):
        self.config = config

    def __call__(self, record: RepoFile) -> RepoFile:
        text, replaced = scrub_text(record.content, self.config)
        if not replaced:
            return record
        count_replacements(self, replaced)
        self.count("files-changed")
        return record.replace(content=text)
