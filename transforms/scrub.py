"""Email scrubbing stage: replace email addresses with removed@example.com (paper footnote 7).

An address is `local@domain` where the local part is 1-64 of `A-Z a-z 0-9 . _ % + -`
and the domain is dot-separated labels ending in a known top-level domain (the
country codes and the common generic ones in `TOP_LEVEL_DOMAINS`). Requiring a
real TLD is what keeps code intact:

- `@decorator`, `@Override`, CSS `@media`: nothing before the `@`, never matched;
- matrix products `a@b.T`, `x@w.transpose()`, `q@k.mT`: `T`/`transpose` are not
  TLDs, a TLD is all lower- or all upper-case, and a name followed by `(` is a
  call, not a domain;
- package pins `lodash@4.17.21`, `node@sha256:...`: no TLD.

Judgment call, for ssh and URL user names: `git@github.com:owner/repo.git` (an
scp-style remote, `@host` followed by `:path`) and `ssh://git@host/...` or
`https://user@host/...` (a user name inside a URL) address an account on a host,
not a mailbox, and scrubbing them would break the code that uses them; they are
left as they are. `mailto:jane@example.org` is an address and is scrubbed.

Work per file is linear: only the text around each `@` is examined, and files
without one are returned untouched. The stage never rejects; its stats count
addresses replaced and files changed.
"""

from __future__ import annotations

import re

from schemas.records import RepoFile
from transforms.base import RecordFn

REPLACEMENT = "removed@example.com"

# ISO 3166 country-code TLDs and the generic TLDs that carry most mail.
TOP_LEVEL_DOMAINS = frozenset(
    """
    ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt bw by bz
    ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu fi fj fk
    fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir
    is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk
    ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl
    pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss st su sv sx sy sz tc
    td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw
    com org net edu gov mil int info biz name pro aero coop museum mobi app dev tech online site email cloud
    xyz page blog mail systems network software digital global group company services agency studio design
    media news live world today life space store shop art club team solutions academy institute foundation
    """.split()
)
# All lower- or all upper-case: `q@k.mT` (a transposed matrix product) is not an address.
_TLD = "|".join(sorted(TOP_LEVEL_DOMAINS | {t.upper() for t in TOP_LEVEL_DOMAINS}, key=lambda t: (-len(t), t)))
_LOCAL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}\Z")  # searched in text[at-64:at]
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:%s)(?![A-Za-z0-9_(-]|\.[A-Za-z0-9])" % _TLD
)
_TOKEN_BEFORE = re.compile(r"[^\s\"'<>()\[\]{}]*\Z")  # the unbroken text before an address
_SCP_PATH = re.compile(r":[^\s\d]")  # `@host:path`, as in git@github.com:owner/repo.git
URL_LOOKBACK = 256


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


class ScrubEmailsFn(RecordFn):
    """Replace email addresses in a file's content; counts what it replaced."""

    stage = "scrub"

    def __init__(self, replacement: str = REPLACEMENT):
        self.replacement = replacement

    def __call__(self, record: RepoFile) -> RepoFile:
        text, replaced = scrub_emails(record.content, self.replacement)
        if not replaced:
            return record
        self.count("emails-replaced", replaced)
        self.count("files-changed")
        return record.replace(content=text)
