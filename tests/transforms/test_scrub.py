"""Scrubbing: emails, secrets and IP addresses replaced; code patterns that look like them left alone."""

from __future__ import annotations

import glob
import importlib
import os
import re

import pytest

from schemas.config import ScrubConfig
from schemas.records import RepoFile
from tests.conftest import SAMPLE_REPOS
from transforms.cleaning.pii.scrub import REPLACEMENT, ScrubFn, scrub_emails, scrub_text

DECORATOR = re.compile(r"^\s*@\w")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("jane.doe@textkit-dev.org", REPLACEMENT),
        ('"Jane" <jane.doe@textkit-dev.org>', f'"Jane" <{REPLACEMENT}>'),
        ("releases+announce@lists.textkit-dev.org", REPLACEMENT),
        ("mailto:jane@textkit-dev.org", f"mailto:{REPLACEMENT}"),
        ("Contact: OPS@EXAMPLE.CO.UK.", f"Contact: {REPLACEMENT}."),
        ("a@b.io,c@d.de", f"{REPLACEMENT},{REPLACEMENT}"),
        ("# Author: Łukasz <l.nowak@uni.edu.pl>", f"# Author: Łukasz <{REPLACEMENT}>"),
        ("write to x@y.Com today", f"write to {REPLACEMENT} today"),  # mixed-case domain
        ("Sales@Shop.Textkit-Dev.Org", REPLACEMENT),
        ("ana@studio.engineering, ben@kiez.berlin", f"{REPLACEMENT}, {REPLACEMENT}"),  # TLDs of the ICANN list
        ("ivan@example.xn--p1ai", REPLACEMENT),  # an IDN TLD (.рф) in its ASCII form
    ],
)
def test_addresses_are_replaced(text, expected):
    assert scrub_emails(text)[0] == expected


@pytest.mark.parametrize(
    "text",
    [
        "@app.route('/items')\ndef items(): ...",  # decorator
        "@Override\npublic String toString()",  # Java annotation
        "@media (max-width: 600px) { body { margin: 0 } }",  # CSS at-rule
        "y = a@b.T",  # matrix product, transposed
        "z = x@w.transpose() + q@k.mT",  # products with method and attribute
        "out = h@self.weight.to(device)",
        '"lodash@4.17.21", "@babel/core@7.24.0"',  # package pins
        "FROM node@sha256:abc123",
        "my @array = (1, 2); print scalar(@array);",  # Perl arrays
        "git clone git@github.com:owner/repo.git",  # scp-style ssh remote: an account on a host
        "url = 'ssh://git@gitlab.com/group/project.git'",
        "proxy = 'https://user@proxy.example.com:8080/'",
        "user@localhost",
        REPLACEMENT,  # already scrubbed
        "docs: you@example.com, ops@example.org, a@b.example, c@d.test, e@f.invalid",  # documentation domains (RFC 2606)
        "x" * 70 + "@example.com",  # local part longer than 64 characters
    ],
)
def test_code_patterns_are_left_alone(text):
    assert scrub_emails(text) == (text, 0)


def test_sample_contact_file():
    with open(os.path.join(SAMPLE_REPOS, "textkit/textkit/contact.py"), encoding="utf-8") as f:
        text = f.read()
    scrubbed, n = scrub_emails(text)
    assert n == 4 and "textkit-dev.org" not in scrubbed and scrubbed.count(REPLACEMENT) == 4
    assert scrubbed.replace(REPLACEMENT, "") == text.replace("jane.doe@textkit-dev.org", "").replace(
        "ravi.kumar@mail.textkit-dev.org", ""
    ).replace("releases+announce@lists.textkit-dev.org", "")


def test_real_decorator_heavy_code_keeps_every_decorator():
    """Installed code full of decorators and `@` operators: every `@` line survives as it was."""
    beam_transforms = os.path.dirname(importlib.import_module("apache_beam.transforms.core").__file__)
    paths = [importlib.import_module(m).__file__ for m in ("functools", "dataclasses", "hypothesis.core")]
    paths += sorted(glob.glob(os.path.join(beam_transforms, "*.py")))
    decorators = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        at_lines = [line for line in text.splitlines() if DECORATOR.match(line)]
        decorators += len(at_lines)
        scrubbed, _ = scrub_emails(text)
        assert [line for line in scrubbed.splitlines() if DECORATOR.match(line)] == at_lines, path
    assert decorators > 200


def test_stage_counts_replacements_and_changed_files():
    fn = ScrubFn()
    a = RepoFile("a", "local", "o/r", "a.py", None, "MIT", 1, 1, "# by ann@textkit-dev.org and bob@textkit-dev.org\n")
    b = RepoFile("b", "local", "o/r", "b.py", None, "MIT", 1, 1, "@property\ndef x(self): ...\n")
    assert fn(a).content == f"# by {REPLACEMENT} and {REPLACEMENT}\n"
    assert fn(b) is b
    assert fn.stats == {"replaced-email": 2, "files-changed": 1}
    other = ScrubFn(ScrubConfig(replacement="nobody@invalid.example"))
    assert other(a).content.count("nobody@invalid.example") == 2


# Made-up credentials in the formats the detectors know (none is a real key).
AWS_KEY_ID = "AKIA" + "Z7VRSQ5TJKF3Q2BN"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYzKlq3Tp9Wd"
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----"
CONFIG = ScrubConfig()


@pytest.mark.parametrize(
    "text, expected, kind",
    [
        (f'aws_access_key_id = "{AWS_KEY_ID}"', 'aws_access_key_id = "<KEY>"', "aws-key-id"),
        (f'aws_secret_access_key = "{AWS_SECRET}"', 'aws_secret_access_key = "<KEY>"', "aws-secret"),
        (f"export GH_TOKEN={GITHUB_TOKEN}\n", "export GH_TOKEN=<KEY>\n", "github"),
        (f'KEY = """{PEM}"""\n', 'KEY = """<KEY>"""\n', "private-key"),
        (f"key = '{PEM}'".replace("\n", "\\n"), "key = '<KEY>'", "private-key"),  # one line, escaped newlines
        ('UPSTREAM = "52.14.3.9"', 'UPSTREAM = "<IP_ADDRESS>"', "ipv4"),
        ("connect(('93.184.216.34', 443))", "connect(('<IP_ADDRESS>', 443))", "ipv4"),
        ("server 203.0.114.7:8080;", "server <IP_ADDRESS>:8080;", "ipv4"),  # the port stays
        ("listen [2a00:1450:4001:81c::200e]:443;", "listen [<IP_ADDRESS>]:443;", "ipv6"),
        ('hook = "https://hooks.slack.com/services/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"', 'hook = "<KEY>"', "slack"),
    ],
)
def test_secrets_and_ip_addresses_are_replaced(text, expected, kind):
    assert scrub_text(text, CONFIG) == (expected, {kind: 1})


@pytest.mark.parametrize(
    "text",
    [
        "@dataclass\nclass Point: ...",  # decorator
        "w = a@b.T",  # transposed matrix product
        "requests==2.31.0\nurllib3>=1.26.18\npywin32==306.1.2.3",  # version pins
        "git remote add origin git@gitlab.com:group/project.git",  # scp-style remote
        'HOST = "127.0.0.1"; LAN = "192.168.1.20"; ANY = "0.0.0.0"; MASK = "255.255.255.0"',  # not global
        'DNS = ["8.8.4.4", "1.1.1.1", "2606:4700:4700::1111"]',  # well-known public resolvers identify no one
        'LOCAL6 = ["::1", "fe80::1c2d:3eff:fe4f:5a6b", "fd12:3456:789a:1::1", "2001:db8::8a2e:370:7334"]',
        'DOCS = "192.0.2.10"',  # the documentation range
        '__version__ = "2.0.0.1"',
        "image = 'icr.io/ibm-messaging/mq:9.3.0.25-r1'; dep = 'com.ibm.mq:allclient:9.3.0.25'",  # tags, coordinates
        'if "BEGIN RSA PRIVATE KEY" in pem:  # a check, not a key',
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1L\n-----END PUBLIC KEY-----",
        'digest = "3f786850e387550fdab836ed7e6dc881de23001b"',  # a SHA-1: entropy is not a secret here
        'AWS_ACCESS_KEY_ID = "${AWS_ACCESS_KEY_ID}"',  # a template
        'uuid = "123e4567-e89b-12d3-a456-426614174000"',
    ],
)
def test_negative_twins_stay_untouched(text):
    assert scrub_text(text, CONFIG) == (text, {})


def test_switches_turn_secrets_and_addresses_off():
    text = f'key = "{AWS_KEY_ID}"; ip = "52.14.3.9"; mail = "a@b.com"'
    off = ScrubConfig(secrets=False, ip_addresses=False)
    assert scrub_text(text, off) == (f'key = "{AWS_KEY_ID}"; ip = "52.14.3.9"; mail = "{REPLACEMENT}"', {"email": 1})
    custom = ScrubConfig(key_replacement="REDACTED", ip_replacement="0.0.0.0")
    assert scrub_text(text, custom)[0] == f'key = "REDACTED"; ip = "0.0.0.0"; mail = "{REPLACEMENT}"'


def test_stage_counts_every_kind():
    content = f'# ops@corp.io\nKEY = "{AWS_KEY_ID}"\nPEM = """{PEM}"""\nIP = "52.14.3.9"\nIP6 = "2a00:1450::1"\n'
    fn = ScrubFn()
    out = fn(RepoFile("a", "local", "o/r", "a.py", None, "MIT", 1, 1, content))
    assert "corp.io" not in out.content and AWS_KEY_ID not in out.content and "MIIE" not in out.content
    assert fn.stats == {
        "replaced-email": 1,
        "replaced-aws-key-id": 1,
        "replaced-private-key": 1,
        "replaced-ipv4": 1,
        "replaced-ipv6": 1,
        "files-changed": 1,
    }
