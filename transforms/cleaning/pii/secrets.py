"""Secrets in text (beyond the paper, as StarCoder's PII step): API keys, tokens, private keys.

Chosen by `bench/bench_pii.py` on the labelled PII benchmark (docs/cleaning.md says
why): MongoDB's Kingfisher (`kingfisher-secret-scanner`, Apache-2.0), whose bundled
catalogue of 488 rules (Betterleaks' and Veles') runs in-process as one Vectorscan
pass over the text, offline, base64 decoding off. Around it:

- Private keys are ours (`transforms.cleaning.pii.private_keys`): the policy is about spans, one
  BEGIN/END pair of the same label, encrypted, truncated and PuTTY keys included.
- A few token formats that Kingfisher's rules only take next to a vendor's name
  (Telegram bot tokens, Discord bot tokens, Mailchimp keys, Artifactory keys) and AWS
  key ids and secret keys in an AWS setting written the way a JSON string escapes them,
  are matched by detect-secrets' patterns for them (`FORMATS`), each run only on text
  where its gate (a literal prefix) is found.
- Findings that span lines (a rule matching a whole credentials document, such as
  `gcp-application-default-credentials`: the value alone is what is replaced) and
  findings whose value is a placeholder or a documented example (`AKIA...EXAMPLE`,
  `ghp_xxxx...`, `${TOKEN}`, `sk-...`) and rules that name an identifier rather than a
  credential (account names, OAuth client ids, service URLs; a webhook URL is a
  credential and stays in) are dropped.

Each finding is (start, end, kind, subkind): the secret's value alone (no key name,
quote or rest of line), kind `secret`, subkind the issuer (`aws-key-id`, `github`,
`private-key`, ...; `other` for the rest of the catalogue).
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from transforms.cleaning.pii.private_keys import key_blocks

SECRET = "secret"
PRIVATE_KEY = "private-key"
OTHER = "other"  # a secret found by a Kingfisher rule outside SUBKINDS
# Kingfisher rule id fragments → subkind, first match wins.
SUBKINDS = (
    ("aws-access-token", "aws-key-id"), ("aws-secret", "aws-secret"), ("aws", "aws"), ("github", "github"),
    ("gitlab", "gitlab"), ("slack", "slack"), ("stripe", "stripe"), ("gcp-api-key", "google-api"),
    ("google", "google-api"), ("gcp", "google-api"), ("huggingface", "huggingface"), ("openai", "openai"),
    ("anthropic", "anthropic"), ("npm", "npm"), ("pypi", "pypi"), ("sendgrid", "sendgrid"), ("twilio", "twilio"),
    ("jwt", "jwt"), ("artifactory", "artifactory"), ("azure-storage", "azure-storage"), ("discord", "discord"),
    ("telegram", "telegram"), ("mailchimp", "mailchimp"),
)  # fmt: skip
KEY_BLOCK_RULE = "private-key"  # Kingfisher's PEM rule: `transforms.cleaning.pii.private_keys` finds key blocks instead
# Rules that name an identifier, not a credential (an OAuth client id, an account name, a service URL).
IDENTIFIER_RULE_PARTS = (
    "account-name", "cloud-name", "username", "auth-user", "client-id", "tenant-id", "application-id", "app-id",
    "jfrog-url", "project-url", "instance-url", "token-name", "-repository",
)  # fmt: skip
_PLACEHOLDER = re.compile(
    r"example|x{6,}|X{6,}|\*{3,}|\.\.\.|<|>|\$\{|\{\{|your|changeme|dummy|placeholder|redacted|0{8,}", re.IGNORECASE
)
# detect-secrets' patterns for formats Kingfisher takes only near a vendor's name:
# (subkind, gate, pattern); a pattern runs only on text where its gate (a literal
# prefix, or for Discord the dots between a token's parts) is found.
FORMATS = (
    ("aws-key-id", re.compile(r"AKIA|ASIA|A3T|ABIA|ACCA"),
     re.compile(r"(?<![A-Z0-9])(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])")),
    ("aws-secret", re.compile(r"ecret|ECRET"), re.compile(
        r"(?i:aws_?secret_?(?:access_?)?key|secretaccesskey)[\\\"']*\s*[:=]\s*\\?[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")),
    ("telegram", re.compile(r":AA"), re.compile(r"(?<![\d:])\d{8,10}:AA[0-9A-Za-z_-]{33}(?![\w-])")),
    ("discord", re.compile(r"\.[\w-]{6}\.[\w-]{27}"),
     re.compile(r"(?<![\w-])[MNO][a-zA-Z\d_-]{23,25}\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27,38}(?![\w-])")),
    ("mailchimp", re.compile(r"-us\d"), re.compile(r"(?<![0-9a-z])[0-9a-f]{32}-us[0-9]{1,2}(?!\d)")),
    ("artifactory", re.compile(r"AKC"), re.compile(r"(?<!\w)AKC[a-zA-Z0-9]{10,}(?!\w)")),
)  # fmt: skip
WARM_UP = "AKIAZ7VRSQ5TJKF3Q2BN -----BEGIN PRIVATE KEY-----"  # a text that loads what finding secrets needs


class Finding(NamedTuple):
    start: int
    end: int
    kind: str
    subkind: str


@functools.lru_cache(maxsize=1)
def scanner():
    """Kingfisher's scanner with its bundled rules (compiled once per process; cached on disk)."""
    from kingfisher_sdk import Scanner

    return Scanner(base64=False)


@functools.lru_cache(maxsize=1024)
def subkind(rule_id: str) -> str | None:
    """The subkind of a Kingfisher rule, or None for a rule we do not replace."""
    name = rule_id.split(".", 1)[-1].lower()  # betterleaks.slack-webhook-url, veles.secrets/sendgrid
    if name == KEY_BLOCK_RULE or any(part in name for part in IDENTIFIER_RULE_PARTS):
        return None
    return next((sub for part, sub in SUBKINDS if part in name), OTHER)


def is_placeholder(value: str) -> bool:
    """A documented example or a value left to fill in (`AKIAIOSFODNN7EXAMPLE`, `ghp_xxxx...`, `${TOKEN}`)."""
    return bool(_PLACEHOLDER.search(value)) or len(set(value)) < 6


def kingfisher_findings(text: str, data: bytes) -> list[Finding]:
    """Kingfisher's findings in text (`data`, its UTF-8 bytes), less placeholders and ignored rules."""
    ascii_only = len(data) == len(text)
    found = []
    for finding in scanner().scan(data):
        sub = finding.visible and subkind(finding.rule_id)
        if not sub:
            continue
        start, end = finding.location["start_offset"], finding.location["end_offset"]
        if not ascii_only:  # byte offsets → character offsets
            start, end = len(data[:start].decode("utf-8", "ignore")), len(data[:end].decode("utf-8", "ignore"))
        if "\n" not in text[start:end] and not is_placeholder(text[start:end]):
            found.append(Finding(start, end, SECRET, sub))
    return found


def format_findings(text: str) -> list[Finding]:
    """detect-secrets' patterns of `FORMATS`, each on text where its gate is found."""
    found = []
    for sub, gate, pattern in FORMATS:
        if not gate.search(text):
            continue
        for m in pattern.finditer(text):
            start, end = m.span(pattern.groups) if pattern.groups else m.span()
            if not is_placeholder(text[start:end]):
                found.append(Finding(start, end, SECRET, sub))
    return found


def find_secrets(text: str, data: bytes | None = None) -> list[Finding]:
    """Every secret in text (`data`, its UTF-8 bytes, if at hand): Kingfisher's rules, `FORMATS` and key blocks."""
    found = [Finding(start, end, SECRET, PRIVATE_KEY) for start, end in key_blocks(text)]
    return found + kingfisher_findings(text, text.encode() if data is None else data) + format_findings(text)


def non_overlapping(findings: list[Finding]) -> list[Finding]:
    """Findings sorted by start; one that overlaps an earlier (or longer, same-start) one is dropped.
    Of two with the same span, the one naming its issuer is kept over `other` (Kingfisher's generic
    rules, such as a curl header's, find the same value as the issuer's rule)."""
    kept, end = [], -1
    for finding in sorted(findings, key=lambda f: (f.start, -f.end, f.subkind == OTHER, f.subkind)):
        if finding.start >= end:
            kept.append(finding)
            end = finding.end
    return kept
