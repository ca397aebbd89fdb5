"""Secrets and IP addresses in text, found with Yelp's detect-secrets (beyond the paper).

StarCoder's PII step (bigcode-dataset `pii/`) runs detect-secrets over every file and
replaces what it finds with placeholders; we do the same with its token-format
detectors (`SECRET_DETECTORS`: AWS, GitHub, GitLab, Slack, Stripe, OpenAI, PyPI, npm,
JWTs, private keys and the rest), and leave out the ones that guess: the entropy and
keyword detectors flag hashes, test fixtures and every `password = ...` line in code.
Candidates that detect-secrets' own heuristics call a UUID, a templated value
(`${TOKEN}`, `<token>`) or a sequential string (`abcdef...`) are kept as they are.

- Private keys: the detector finds the `BEGIN ... PRIVATE KEY` header; the whole PEM
  block up to its `END` line is the secret (a header alone, as in code that checks for
  one, is left as it is).
- IPv4 addresses: detect-secrets' public-IPv4 matcher, keeping only addresses the
  standard library calls global (`ipaddress`: not private, loopback, link-local,
  documentation, reserved or `0.0.0.0`) and not part of a version (`pkg==1.2.3.4`,
  `v1.2.3.4`, `image:9.3.0.25`, `group:artifact:9.3.0.25`, a line that says
  `version`). A `:port` after one stays.

Each finding is (start, end, kind), the secret alone where a detector's pattern
captures it after its key name (`aws_secret = "..."`); kinds are slugs of
detect-secrets' secret types (`aws-access-key`, `private-key`, ...) and `ipv4`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import NamedTuple

IPV4 = "ipv4"
PRIVATE_KEY = "private-key"
SECRET_DETECTORS = (
    "artifactory.ArtifactoryDetector",
    "aws.AWSKeyDetector",
    "azure_storage_key.AzureStorageKeyDetector",
    "cloudant.CloudantDetector",
    "discord.DiscordBotTokenDetector",
    "github_token.GitHubTokenDetector",
    "gitlab_token.GitLabTokenDetector",
    "ibm_cloud_iam.IbmCloudIamDetector",
    "ibm_cos_hmac.IbmCosHmacDetector",
    "jwt.JwtTokenDetector",
    "mailchimp.MailchimpDetector",
    "npm.NpmDetector",
    "openai.OpenAIDetector",
    "private_key.PrivateKeyDetector",
    "pypi_token.PypiTokenDetector",
    "sendgrid.SendGridDetector",
    "slack.SlackDetector",
    "softlayer.SoftlayerDetector",
    "square_oauth.SquareOAuthDetector",
    "stripe.StripeDetector",
    "telegram_token.TelegramBotTokenDetector",
    "twilio.TwilioKeyDetector",
)
MIN_SECRET_CHARS = 8  # shorter matches are replaced nowhere: too likely to occur as ordinary text
PEM_BLOCK = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY((?: BLOCK)?)-----.*?-----END \1PRIVATE KEY\2-----", re.DOTALL
)
_VERSION_BEFORE = re.compile(r"(?:(?:[=<>~!^@]=?|[vV])\s*|:)\Z")  # pins, v1.2.3.4, image:tag, group:artifact:version
_VERSION_WORD = re.compile(r"version", re.IGNORECASE)


class Finding(NamedTuple):
    start: int
    end: int
    kind: str


def slug(secret_type: str) -> str:
    """detect-secrets' `AWS Access Key` → `aws-access-key`."""
    return re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-")


@functools.lru_cache(maxsize=1)
def secret_plugins() -> tuple:
    """One instance of each detector (built once per worker process)."""
    import importlib

    plugins = []
    for name in SECRET_DETECTORS:
        module, cls = name.rsplit(".", 1)
        plugins.append(getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), cls)())
    return tuple(plugins)


@functools.lru_cache(maxsize=1)
def _heuristics() -> tuple:
    from detect_secrets.filters import heuristic

    return heuristic.is_potential_uuid, heuristic.is_templated_secret, heuristic.is_sequential_string


def _ipv4_pattern() -> re.Pattern:
    from detect_secrets.plugins.ip_public import IPPublicDetector

    return IPPublicDetector.denylist[0]


# Detectors whose patterns only match on a line holding one of these (lowercase) strings,
# and never across lines: they scan those lines alone. Their patterns start with a
# keyword or a prefix; scanning every position of every file is what made them slow.
LINE_GATES = {
    "ArtifactoryDetector": ("akc", "ap"),
    "AWSKeyDetector": ("a3t", "abia", "acca", "akia", "asia", "aws"),
    "CloudantDetector": ("key", "pw", "pass", "token", "cloudant"),
    "IbmCloudIamDetector": ("key", "pwd", "pass", "token"),
    "IbmCosHmacDetector": ("secret",),
    "MailchimpDetector": ("-us",),
    "SlackDetector": ("xox", "hooks.slack"),
    "SoftlayerDetector": ("key", "pwd", "pass", "token", "softlayer"),
}


def gated_regions(text: str, lowered: str, needles: tuple[str, ...]) -> list[tuple[int, int]]:
    """[start, end) of the runs of lines holding a needle, each widened by the newline on either
    side so that patterns anchored on whitespace match there exactly as in the whole text."""
    lines = set()
    for needle in needles:
        at = lowered.find(needle)
        while at != -1:
            start = lowered.rfind("\n", 0, at) + 1
            end = lowered.find("\n", at)
            end = len(text) if end == -1 else end
            lines.add((start, end))
            at = lowered.find(needle, end)
    regions: list[tuple[int, int]] = []
    for start, end in sorted(lines):
        start, end = max(0, start - 1), min(len(text), end + 1)
        if regions and start <= regions[-1][1]:
            regions[-1] = (regions[-1][0], max(end, regions[-1][1]))
        else:
            regions.append((start, end))
    return regions


def secret_spans(plugin, text: str, lowered: str | None = None):
    """(start, end) of each match of a detector's patterns: its longest group, or the whole match
    where the groups only name a prefix (`(ghp|gho|...)_[A-Za-z0-9_]{36}`)."""
    needles = LINE_GATES.get(type(plugin).__name__)
    regions = gated_regions(text, lowered or text.lower(), needles) if needles else [(0, len(text))]
    for pattern in plugin.denylist:
        for start, end in regions:
            for match in pattern.finditer(text, start, end):
                groups = [match.span(i) for i in range(1, (pattern.groups or 0) + 1) if match.group(i)]
                span = max(groups, key=lambda g: g[1] - g[0], default=match.span())
                yield span if span[1] - span[0] >= MIN_SECRET_CHARS else match.span()


def find_secrets(text: str) -> list[Finding]:
    """Every secret detect-secrets' token detectors find in text."""
    findings = []
    lowered = text.lower()
    for plugin in secret_plugins():
        kind = slug(plugin.secret_type)
        if kind == PRIVATE_KEY:
            if any(True for _ in plugin.analyze_string(text)):
                findings += [Finding(m.start(), m.end(), kind) for m in PEM_BLOCK.finditer(text)]
            continue
        for start, end in secret_spans(plugin, text, lowered):
            value = text[start:end]
            if len(value) >= MIN_SECRET_CHARS and not any(check(value) for check in _heuristics()):
                findings.append(Finding(start, end, kind))
    return findings


def is_version(text: str, start: int) -> bool:
    """Whether the dotted number at text[start:] is written as a version."""
    line_start = text.rfind("\n", 0, start) + 1
    before = text[max(line_start, start - 40) : start]
    return bool(_VERSION_BEFORE.search(before) or _VERSION_WORD.search(before))


def find_ipv4(text: str) -> list[Finding]:
    """Global IPv4 addresses that are not versions (the module docstring says which)."""
    if not any(c.isdigit() for c in text):
        return []
    findings = []
    for match in _ipv4_pattern().finditer(text):
        address = match.group(1).split(":")[0]
        start = match.start(1)
        if _is_global(address) and not is_version(text, start):
            findings.append(Finding(start, start + len(address), IPV4))
    return findings


def _is_global(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


def non_overlapping(findings: list[Finding]) -> list[Finding]:
    """Findings sorted by start; one that overlaps an earlier (or longer, same-start) one is dropped."""
    kept, end = [], -1
    for finding in sorted(findings, key=lambda f: (f.start, -f.end)):
        if finding.start >= end:
            kept.append(finding)
            end = finding.end
    return kept
