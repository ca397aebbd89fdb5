"""Which kinds of PII a text may hold, in one Hyperscan pass: the scrub stage's prefilter.

Most code holds no email, secret or address; the exact finders (`transforms.cleaning.pii.emails`,
`transforms.cleaning.pii.secrets`, `transforms.cleaning.pii.ip_addresses`) run only on a text where this pass saw a
candidate of their kind. Each pattern is a necessary condition of its finder, so
skipping a text without one loses nothing (`tests/transforms/test_pii_benchmark.py`
checks that on every item of the PII benchmark):

- email: an `@` or `%40` with a local-part character before it and a domain character
  after it;
- ipv4: four dot-separated runs of 1-3 digits; ipv6: a hex group of 2000::/3 and two
  colons;
- secret: a private key marker, or an issuer's prefix or setting for the formats
  `transforms.cleaning.pii.secrets` reports by subkind (`AKIA`, `ghp_`, `glpat-`, `xox`, `sk_live_`,
  `AIza`, `hf_`, `sk-`, `npm_`, `pypi-`, `SG.`, `eyJ`, `AKC`, `AccountKey`, `aws`,
  ...), or a credential's name (`api_key`, `access_token`, `client_secret`, `Bearer`,
  ...): Kingfisher's generic and other vendors' rules run on the texts these let through.

Hyperscan (Intel's multi-pattern engine, `hyperscan` package) scans the UTF-8 bytes
once for all of them, at several hundred MB/s.
"""

from __future__ import annotations

import functools

from transforms.cleaning.pattern_set import PatternSet

EMAIL, SECRET, IPV4, IPV6 = "email", "secret", "ipv4", "ipv6"
PATTERNS = (
    (EMAIL, rb"(?:[\w.%+-]|[\x80-\xff])(?:@|%40)(?:[A-Za-z0-9]|[\x80-\xff])"),
    (IPV4, rb"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"),
    (IPV6, rb"[23][0-9A-Fa-f]{0,3}:[0-9A-Fa-f]{0,4}:"),
    (SECRET, rb"PRIVATE KEY|PuTTY-User-Key-File"),
    (SECRET, rb"AKIA|ASIA|A3T[A-Z0-9]|ABIA|ACCA|(?i:aws)|AccountKey|SecretAccessKey"),
    (SECRET, rb"gh[pousr]_|github_pat_|glpat-|xox[abposre]-|hooks\.slack\.com|[sr]k_(?:live|prod)_|AIza"),
    (SECRET, rb"\bhf_|\bsk-|\bnpm_|pypi-|\bSG\.|eyJ|AKC|\bSK[0-9a-f]{32}|\d:AA|[0-9a-f]-us\d"),
    (SECRET, rb"[MNO][\w-]{23,25}\.[\w-]{6}\."),  # a Discord bot token's first two parts
    # A credential named in the text: Kingfisher's generic and other vendors' rules look here.
    (SECRET, rb"(?i)api[_-]?key|access[_-]?token|secret[_-]?key|client[_-]?secret|auth[_-]?token|bearer"),
)


@functools.lru_cache(maxsize=1)
def pattern_set() -> PatternSet:
    """The compiled patterns (once per process)."""
    return PatternSet([pattern for _, pattern in PATTERNS])


def candidate_kinds(data: bytes) -> set[str]:
    """The kinds (`email`, `secret`, `ipv4`, `ipv6`) whose candidates occur in the UTF-8 bytes."""
    return {PATTERNS[i][0] for i in pattern_set().found(data)}
