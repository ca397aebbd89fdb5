"""Email addresses in text (paper footnote 7): where they are, and which look-alikes are not.

An address is `local@domain`: the local part 1-64 letters (any script), digits or
`. _ % + -`; the domain dot-separated labels (any script, or punycode) ending in a
top-level domain of the Public Suffix List's ICANN section (the `publicsuffixlist`
package ships it: `.com`, `.engineering`, `.berlin`, `.рф`, `.xn--p1ai`, ...).
Domains match whatever their case (`x@y.Com`, `OPS@EXAMPLE.CO.UK`), except that a TLD
written in mixed case other than capitalised (`q@k.mT`, a transposed matrix product)
is not taken for one. In URL query strings the `@` may be written `%40`
(`?email=jane%40mail.com`): that is an address too. Requiring a real TLD keeps most
code intact:

- `@decorator`, `@Override`, CSS `@media`: nothing before the `@`, never matched;
- matrix products `a@b.T`, `x@w.transpose()`, `q@k.mT`: `T`/`transpose` are not
  TLDs, `mT` is not written as a domain is, a name followed by `(` is a call;
- package pins `lodash@4.17.21`, `node@sha256:...`: no TLD.

Refused although their last label is a TLD:

- chains of code names: a "domain" that starts with `self`, `this` or `cls`
  (`x@self.weight.data`: `.data` is a TLD);
- SSH algorithm names (RFC 4251 `name@domain` extensions such as
  `chacha20-poly1305@openssh.com`, `curve25519-sha256@libssh.org`): a local part
  naming a cipher, MAC, hash or key exchange;
- documentation domains (RFC 2606: `example.com/.org/.net`, `.example`, `.test`,
  `.invalid`, `.localhost`), so the replacement itself and docs' samples stay;
- accounts on hosts, not mailboxes: `git@github.com:owner/repo.git` (scp-style,
  `@host` followed by `:path`) and `ssh://git@host/...` or `https://user@host/...`
  (a user name right after a URL's `://`). `mailto:` and query strings are mailboxes.

Work is linear in the text: only the text around each `@` (or `%40`) is examined.
"""

from __future__ import annotations

import functools
import re

_LOCAL = re.compile(r"(?<![\w.%+-])[\w.%+-]{1,64}\Z")  # searched in text[at-64:at]
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_DOMAIN = re.compile(r"(?:%s\.)+(%s)(?![\w(-]|\.[^\W_])" % (_LABEL, _LABEL))
_URL_USER = re.compile(r"://(?:[^\s/?#@\"'<>]*:)?\Z")  # `scheme://` (or `scheme://user:`) right before
_SCP_PATH = re.compile(r":[^\s\d]")  # `@host:path`, as in git@github.com:owner/repo.git
CODE_RECEIVERS = frozenset({"self", "this", "cls", "super"})
# Stems of SSH algorithm names' hyphen-separated parts (`hmac-sha2-512-etm`, `aes256-gcm`).
ALGORITHM_STEMS = (
    "sha", "md5", "aes", "chacha", "poly1305", "curve", "ed25519", "ed448", "ecdh", "ecdsa", "nistp",
    "hmac", "umac", "etm", "gcm", "ctr", "cbc", "sntrup", "mlkem", "diffie", "rsa", "ssh", "cert", "x25519",
)  # fmt: skip
DOCUMENTATION_DOMAINS = ("example.com", "example.org", "example.net")
DOCUMENTATION_TLDS = ("example", "test", "invalid", "localhost")
ENCODED_AT = "%40"


@functools.lru_cache(maxsize=1)
def _public_suffixes():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True, accept_unknown=False)


@functools.lru_cache(maxsize=4096)
def is_tld(label: str) -> bool:
    """A top-level domain of the ICANN list, written lower-case, upper-case or capitalised (or in a
    script without case)."""
    if label.isascii() and not (label.islower() or label.isupper() or label.istitle()) or label.isdigit():
        return False
    return _public_suffixes().is_public(label.lower())


def is_host_account(text: str, start: int, end: int) -> bool:
    """Whether the address at text[start:end] is an ssh/URL user@host rather than a mailbox."""
    return bool(_SCP_PATH.match(text, end) or _URL_USER.search(text, max(0, start - 256), start))


def is_algorithm_name(local: str) -> bool:
    """An SSH algorithm name's first part: hyphenated, with a digit, a part naming a cipher, MAC or hash."""
    parts = local.lower().split("-")
    return len(parts) > 1 and any(c.isdigit() for c in local) and any(p.startswith(ALGORITHM_STEMS) for p in parts)


def is_code_or_documentation(local: str, domain: str) -> bool:
    """Whether local@domain is a code-name chain, an SSH algorithm name or a documentation address."""
    labels = domain.lower().split(".")
    if labels[0] in CODE_RECEIVERS or is_algorithm_name(local):
        return True
    return labels[-1] in DOCUMENTATION_TLDS or ".".join(labels[-2:]) in DOCUMENTATION_DOMAINS


def _address_at(text: str, at: int, width: int) -> tuple[int, int] | None:
    """(start, end) of the address whose `@` (written in `width` characters) is at text[at]."""
    local = _LOCAL.search(text, max(0, at - 64), at)
    if not local:
        return None
    domain = _DOMAIN.match(text, at + width)
    if not domain or not is_tld(domain.group(1)):
        return None
    start, end = local.start(), domain.end()
    if is_code_or_documentation(local.group(), domain.group()) or is_host_account(text, start, end):
        return None
    return start, end


def find_emails(text: str) -> list[tuple[int, int]]:
    """(start, end) of each email address in text, in order."""
    found = []
    for marker in ("@", ENCODED_AT):
        at = text.find(marker)
        while at >= 0:
            span = _address_at(text, at, len(marker))
            if span:
                found.append(span)
            at = text.find(marker, span[1] if span else at + 1)
    return sorted(found)
