"""BigCode's StarCoder PII redaction (its regex approach), re-implemented for the benchmark.

From bigcode-project/bigcode-dataset `pii/` (commit bebec929, Apache-2.0):
`utils/emails_ip_addresses_detection.py` (the email and IP regexes, adapted from
BigScience, with their date, version and validity filters), `utils/keys_detection.py`
(detect-secrets with its plugin and filter lists, then the gibberish and hash filters)
and `pii_redaction.py` (private addresses and popular DNS servers are kept; keys become
32 random characters, emails `xxxxx@example.com`, addresses one of five private ones).
`starcoder_gibberish.model` beside this file is that repository's `pii/gibberish_data/big.model`.
The patterns are copied as published; the structure is ours.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import random
import string
import tempfile

import regex

HERE = os.path.dirname(os.path.abspath(__file__))

_YEAR_PATTERNS = [
    r"(?:^|[\b\s@?,!;:\'\")(.\p{Han}])([1-2][0-9]{3}[\p{Pd}/][1-2][0-9]{3})(?:$|[\s@,?!;:\'\"(.\p{Han}])",
    r"(?:^|[\b\s@?,!;:\'\")(.\p{Han}])([1-2][0-9]{3}[\p{Pd}/.][0-3][0-9][\p{Pd}/.][0-3][0-9])(?:$|[\s@,?!;:\'\"(.\p{Han}])",
    r"(?:^|[\b\s@?,!;:\'\")(.\p{Han}])([0-3][0-9][\p{Pd}/.][0-3][0-9][\p{Pd}/.](?:[0-9]{2}|[1-2][0-9]{3}))(?:$|[\s@,?!;:\'\"(.\p{Han}])",
    r"(?:^|[\b\s@?,!;:\'\")(.\p{Han}])([0-3][0-9][\p{Pd}/](?:[0-9]{2}|[1-2][0-9]{3}))(?:$|[\s@,?!;:\'\"(.\p{Han}])",
    r"(?:^|[\b\s@?,!;:\'\")(.\p{Han}])([1-2][0-9]{3}-[0-3][0-9])(?:$|[\s@,?!;:\'\"(.\p{Han}])",
]
_IPV4 = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)(?:\.(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)){3}"
_IPV6 = (
    r"(?:[0-9a-fA-F]{1,4}:){7,7}[0-9a-fA-F]{1,4}|(?:[0-9a-fA-F]{1,4}:){1,7}:|(?:[0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|"
    r"(?:[0-9a-fA-F]{1,4}:){1,5}(?::[0-9a-fA-F]{1,4}){1,2}|(?:[0-9a-fA-F]{1,4}:){1,4}(?::[0-9a-fA-F]{1,4}){1,3}|"
    r"(?:[0-9a-fA-F]{1,4}:){1,3}(?::[0-9a-fA-F]{1,4}){1,4}|(?:[0-9a-fA-F]{1,4}:){1,2}(?::[0-9a-fA-F]{1,4}){1,5}|"
    r"[0-9a-fA-F]{1,4}:(?:(?::[0-9a-fA-F]{1,4}){1,6})|:(?:(?::[0-9a-fA-F]{1,4}){1,7}|:)|"
    r"fe80:(?::[0-9a-fA-F]{0,4}){0,4}%[0-9a-zA-Z]{1,}|"
    r"::(?:ffff(?::0{1,4}){0,1}:){0,1}(?:(?:25[0-5]|(?:2[0-4]|1{0,1}[0-9]){0,1}[0-9])\.){3,3}"
    r"(?:25[0-5]|(?:2[0-4]|1{0,1}[0-9]){0,1}[0-9])|(?:[0-9a-fA-F]{1,4}:){1,4}:(?:(?:25[0-5]|(?:2[0-4]|1{0,1}[0-9]){0,1}[0-9])\.){3,3}"
    r"(25[0-5]|(?:2[0-4]|1{0,1}[0-9]){0,1}[0-9])"
)
_IP = r"(?:^|[\b\s@?,!;:\'\")(.\p{Han}])(" + "|".join([_IPV4, _IPV6]) + r")(?:$|[\s@,?!;:'\"(.\p{Han}])"
_EMAIL = r"""
    (?<= ^ | [[({<\b\s@,?!;'"\p{Han}¿¡:.] | \\['"] )  # left delimiter
    (
      (?:                                             # local part
        [^][(){}<>\b\s@,?!;'":#/\\=.\-]               # arbitrary character
        |
        (?: [=.\-] (?! [.@]) )                        # ".=-" not before ".@"
      )+
      @
      (?:
        (?:
             \w                                       # single-letter subdomain
           |
             [^.\b\s@?!;,/()>\-:]                     # subdomain (>=2 letter)
             [^.\b\s@?!;,/()>]{0,62}
             [^.\b\s@?!;,/()>\-:'"]
        )
        \.
      ){1,10}
      (?: [\p{L}\p{M}]{2,63} | xn-- \w+ )             # TLD, including IDN
    )
    (?= $ | [])}>\b\s@,?!;'"\p{Han}] | \\['"] | : (?! \d) | \. (?! \S))   # right delim
"""
POPULAR_DNS_SERVERS = {
    "8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "76.76.19.19", "76.223.122.150", "9.9.9.9", "149.112.112.112",
    "208.67.222.222", "208.67.220.220", "8.26.56.26", "8.20.247.20", "94.140.14.14", "94.140.15.15",
}  # fmt: skip
REPLACEMENTS_IP = {
    4: ["172.16.31.10", "172.16.58.3", "172.16.17.32", "192.168.127.12", "192.168.3.11"],
    6: ["fd00:c2b6:b24b:be67:2827:688d:e6a1:6a3b", "fd00:a516:7c1b:17cd:6d81:2137:bd2a:2c5b", "fc00:e968:6179::de52:7100",
        "fc00:db20:35b:7399::5", "fdf8:f53e:61e4::18"],
}  # fmt: skip
FILTERS = [
    {"path": "detect_secrets.filters.heuristic.is_potential_uuid"},
    {"path": "detect_secrets.filters.heuristic.is_likely_id_string"},
    {"path": "detect_secrets.filters.heuristic.is_templated_secret"},
    {"path": "detect_secrets.filters.heuristic.is_sequential_string"},
]
PLUGINS = [
    {"name": name}
    for name in ("ArtifactoryDetector", "AWSKeyDetector", "Base64HighEntropyString", "HexHighEntropyString",
                 "AzureStorageKeyDetector", "CloudantDetector", "DiscordBotTokenDetector", "GitHubTokenDetector",
                 "IbmCloudIamDetector", "IbmCosHmacDetector", "JwtTokenDetector", "MailchimpDetector", "NpmDetector",
                 "SendGridDetector", "SlackDetector", "SoftlayerDetector", "StripeDetector", "TwilioKeyDetector")
]  # fmt: skip


@functools.lru_cache(maxsize=1)
def _regexes():
    years = [regex.compile(p) for p in _YEAR_PATTERNS]
    return years, regex.compile(_IP, flags=regex.MULTILINE), regex.compile(_EMAIL, flags=regex.MULTILINE | regex.VERBOSE)


@functools.lru_cache(maxsize=1)
def _gibberish():
    from gibberish_detector import detector

    return detector.create_from_model(os.path.join(HERE, "starcoder_gibberish.model"))


def _is_version(value: str, context: str) -> bool:
    if value.count(".") == 3 and len(value) == 7:
        return not ("dns" in context.lower() or "server" in context.lower())
    return False


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def emails_and_ips(text: str) -> list[tuple[int, int, str]]:
    """(start, end, tag) of each EMAIL and IP_ADDRESS match, after StarCoder's filters."""
    years, ip_regex, email_regex = _regexes()
    found = [(m.start(1), m.end(1), "EMAIL") for m in email_regex.finditer(text)]
    for m in ip_regex.finditer(text):
        value, (start, end) = m.group(1), m.span(1)
        if not any(c.isdigit() for c in value) or any(y.match(value) for y in years):
            continue
        if _is_version(value, text[start - 100 : end + 100]) or not _is_ip(value):
            continue
        found.append((start, end, "IP_ADDRESS"))
    return found


def _is_hash(content: str, value: str) -> bool:
    target_line = content[: content.index(value)].splitlines()[-1:] or [""]
    return len(value) in (32, 40, 64) and any(x in target_line[0].lower() for x in ("sha", "md5", "hash", "byte"))


def _file_has_hashes(content: str, coeff: float = 0.02) -> bool:
    threshold, count_sha, count_hash = int(coeff * content.count("\n")), 0, 0
    for line in content.splitlines():
        count_sha += line.lower().count("sha")
        count_hash += line.lower().count("hash")
        if count_sha > threshold or count_hash > threshold:
            return True
    return False


def keys(text: str) -> list[tuple[int, int, str]]:
    """(start, end, "KEY") of every occurrence of each secret detect-secrets finds, after StarCoder's filters."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import transient_settings

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(text)
    secrets = SecretsCollection()
    try:
        with transient_settings({"plugins_used": PLUGINS, "filters_used": FILTERS}):
            secrets.scan_file(f.name)
    finally:
        os.unlink(f.name)
    found = []
    for secret_set in list(secrets.data.values())[:1]:
        for secret in secret_set:
            value = secret.secret_value
            if not _gibberish().is_gibberish(value.lower()) or _is_hash(text, value) or _file_has_hashes(text):
                continue
            at = text.find(value)
            while at >= 0:
                found.append((at, at + len(value), "KEY"))
                at = text.find(value, at + len(value))
    return found


def detect(text: str) -> list[tuple[int, int, str]]:
    """StarCoder's findings as (start, end, kind) with kind email / secret / ipv4 / ipv6, after its
    redaction step's exemptions (private addresses, popular DNS servers)."""
    out = []
    for start, end, tag in emails_and_ips(text) + keys(text):
        if tag == "IP_ADDRESS":
            address = ipaddress.ip_address(text[start:end])
            if address.is_private or str(address) in POPULAR_DNS_SERVERS:
                continue
            out.append((start, end, f"ipv{address.version}"))
        else:
            out.append((start, end, "email" if tag == "EMAIL" else "secret"))
    return out


def redact(text: str, findings: list[tuple[int, int, str]], seed: int = 0) -> str:
    """StarCoder's `redact_pii_text`: each finding replaced in order of start, as there (a finding
    that begins where the last one ended, or inside it, gets a space before its replacement)."""
    rng = random.Random(seed)
    parts, step, chosen = [], 0, {}
    for start, end, kind in sorted(findings):
        parts.append(text[step:start] or " ")
        value = text[start:end]
        if value not in chosen:
            if kind.startswith("ipv"):
                chosen[value] = rng.choice(REPLACEMENTS_IP[int(kind[-1])])
            elif kind == "email":
                chosen[value] = "".join(rng.choice(string.ascii_lowercase) for _ in range(5)) + "@example.com"
            else:
                chosen[value] = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(32))
        parts.append(chosen[value])
        step = end
    return "".join(parts) + text[step:]
