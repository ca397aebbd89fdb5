"""Each way the scrub stage used to fail, with real-looking input: what leaked, what was taken
for PII, and what a replacement broke. Every value is made up in its issuer's format."""

from __future__ import annotations

import ast
import importlib.util
import json

import pytest
import yaml

from schemas.config import ScrubConfig
from transforms.cleaning.pii.scrub import REPLACEMENT, scrub_text

CONFIG = ScrubConfig()
IP = "<IP_ADDRESS>"


def scrub(text: str) -> str:
    return scrub_text(text, CONFIG)[0]


def kinds(text: str) -> dict:
    return dict(scrub_text(text, CONFIG)[1])


# ---- IPv4 after `=`, `@`, `:` and at the end of a sentence leaked as a "version" ----------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("DB_HOST=52.14.3.9\nDB_PORT=5432\n", f"DB_HOST={IP}\nDB_PORT=5432\n"),
        ("./manage --host=185.199.108.153 --port=8443", f"./manage --host={IP} --port=8443"),
        ("ssh -i ~/.ssh/id_ed25519 deploy@34.201.17.88 'sudo systemctl restart api'",
         f"ssh -i ~/.ssh/id_ed25519 deploy@{IP} 'sudo systemctl restart api'"),
        ('extra_hosts:\n  - "metrics:91.198.174.192"\n', f'extra_hosts:\n  - "metrics:{IP}"\n'),
        ("Our egress proxy is 141.101.90.7. Traffic stays inside.", f"Our egress proxy is {IP}. Traffic stays inside."),
        ("peer = 2a03:2880:f12f:83:face:b00c:0:25de\n", f"peer = {IP}\n"),  # IPv6 was never found
    ],
)  # fmt: skip
def test_addresses_in_settings_flags_ssh_and_sentences_are_replaced(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        'COMMON_NAME = ObjectIdentifier("2.5.4.3")\nORG = ObjectIdentifier("2.5.4.10")',
        "_OID_NAMES = {\n    '2.5.4.3': 'commonName',\n    '2.5.4.6': 'countryName',\n}  # X.509 attribute OIDs",
        'SHA256_WITH_RSA = "1.2.840.113549.1.1.11"',
        '__version__ = "4.12.1.25"\nrequests==2.31.0\npywin32==306.1.2.3',
        "image: icr.io/ibm-messaging/mq:9.3.0.25-r1",
        'headers = {"User-Agent": "sync-bot/5.9.3.201"}',
        "download('model-6.2.10.146.bin')",
        "# See NIST SP 800 38D, 5.2.1.1\n# Disallowed by X.690 \u00a78.6.2.3\n# see 7.9.2.2 Text Strings",  # sections
    ],
)
def test_oids_and_versions_stay(text):
    assert scrub_text(text, CONFIG) == (text, {})


def test_installed_oid_tables_lose_no_oid():
    """The X.509 OID tables of installed libraries: every dotted number stays."""
    checked = 0
    for module in ("cryptography.hazmat._oid", "asn1crypto.x509"):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            continue
        with open(importlib.util.find_spec(module).origin, encoding="utf-8") as f:
            text = f.read()
        assert "2.5.4.3" in text
        assert "ipv4" not in kinds(text), module
        checked += 1
    assert checked  # cryptography is installed with google-auth


# ---- secret formats that leaked ----------------------------------------------------------------

GOOGLE = "AIza" + "SyB3x9Qk2LmN7vRtYp4WcXs8ZdHjKf6Gq1E"
GITHUB_PAT = "github_pat_11" + "ABCDE2FGH3IJKL4MNOPQ" + "_" + "Xk3mP9qL2vN8rT5wY7zB4cD6fG1hJ0sA3eU5iO7pQ9rZq8Lm3Nx7Vb2Kc9J"
HF = "hf_" + "kQzXwVbNmLpOiUyTrEwQaSdFgHjKlZxCvB"
ANTHROPIC = (
    "sk-ant-api03-" + "Zq8Lm3Nx7Vb2Kc9Jd4Hf6Gs1Pa5Wt0EyXk3mP9qL2vN8rT5wY7zB4cD6fG1hJ0sA3eU5iO7pQ9r" + "Rt5Yu8Io2Pa4Sd6Fg8" + "AA"
)
OPENAI = (
    "sk-proj-"
    + "Xk3mP9qL2vN8rT5wY7zB4cD6fG1hJ0sA3eU5iO7pQ9rZq8Lm3Nx7Vb2Kc9Jd4Hf6Gs1Pa5Wt0E"
    + "T3BlbkFJ"
    + "q8Lm3Nx7Vb2Kc9Jd4Hf6Gs1Pa5Wt0EyXk3mP9qL2vN8rT5wY7zB4cD6fG1hJ0sA3eU5iO7pQ9r"
)
AWS_ID = "AKIA" + "Z7VRSQ5TJKF3Q2BN"
AWS_SECRET = "k4c82mdbL7N6hDqN5WaSyzjPVI97s7vFlFqAMQ8q"


@pytest.mark.parametrize(
    "text, expected, kind",
    [
        (f'firebaseConfig = {{ apiKey: "{GOOGLE}", projectId: "shop-prod" }};', 'firebaseConfig = { apiKey: "<KEY>", projectId: "shop-prod" };', "google-api"),
        (f"export GITHUB_TOKEN={GITHUB_PAT}\n", "export GITHUB_TOKEN=<KEY>\n", "github"),
        (f'login(token="{HF}")', 'login(token="<KEY>")', "huggingface"),
        (f'claude = Anthropic(api_key="{ANTHROPIC}")', 'claude = Anthropic(api_key="<KEY>")', "anthropic"),
        (f'client = OpenAI(api_key="{OPENAI}")', 'client = OpenAI(api_key="<KEY>")', "openai"),
    ],
)  # fmt: skip
def test_token_formats_are_replaced(text, expected, kind):
    assert scrub_text(text, CONFIG) == (expected, {kind: 1})


def test_aws_credentials_file_is_replaced_unquoted():
    text = f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\nregion = us-east-1\n"
    out, replaced = scrub_text(text, CONFIG)
    assert out == "[default]\naws_access_key_id = <KEY>\naws_secret_access_key = <KEY>\nregion = us-east-1\n"
    assert replaced == {"aws-key-id": 1, "aws-secret": 1}


BODY = [
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
    "LdG7wQ3C1mHk0s6RB4eXyPq9dNcTaWzU2vLb5fYgJiOpK8rSt3uVw7xY0zA1B2C3",
]
ENCRYPTED = "\n".join(
    ["-----BEGIN RSA PRIVATE KEY-----", "Proc-Type: 4,ENCRYPTED", "DEK-Info: AES-128-CBC,5E6F7A8B9C0D1E2F3A4B5C6D7E8F9A0B",
     "", *BODY, "-----END RSA PRIVATE KEY-----"]
)  # fmt: skip
PKCS8_ENCRYPTED = "\n".join(["-----BEGIN ENCRYPTED PRIVATE KEY-----", *BODY, "-----END ENCRYPTED PRIVATE KEY-----"])
TRUNCATED = "\n".join(["-----BEGIN OPENSSH PRIVATE KEY-----", *BODY[:2]])
PUTTY = "\n".join(
    ["PuTTY-User-Key-File-3: ssh-ed25519", "Encryption: none", "Comment: pieter@laptop", "Public-Lines: 2", *BODY[:2],
     "Private-Lines: 1", BODY[2], "Private-MAC: 5f2b1c9e8d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c"]
)  # fmt: skip


@pytest.mark.parametrize("key", [ENCRYPTED, PKCS8_ENCRYPTED, PUTTY], ids=["encrypted-pem", "encrypted-pkcs8", "putty"])
def test_encrypted_and_putty_keys_are_replaced_whole(key):
    text = f'KEY = """{key}"""\nload(KEY)\n'
    assert scrub_text(text, CONFIG) == ('KEY = """<KEY>"""\nload(KEY)\n', {"private-key": 1})


def test_a_truncated_key_in_a_question_is_replaced():
    text = f"<p>I load this key:</p><pre><code>{TRUNCATED}\n...</code></pre><p>and it fails.</p>"
    expected = "<p>I load this key:</p><pre><code><KEY>\n...</code></pre><p>and it fails.</p>"
    assert scrub_text(text, CONFIG) == (expected, {"private-key": 1})


# ---- replacements that ate code ----------------------------------------------------------------

PEM_HELPERS = '''BEGIN_RSA = "-----BEGIN RSA PRIVATE KEY-----"


def is_rsa_key(text: str) -> bool:
    """Whether text is one RSA key block."""
    lines = text.strip().splitlines()
    return lines[0] == BEGIN_RSA and lines[-1] == END_RSA and all(len(line) <= 64 for line in lines)


END_RSA = "-----END RSA PRIVATE KEY-----"
'''


def test_code_between_two_pem_marker_constants_stays():
    assert scrub_text(PEM_HELPERS, CONFIG) == (PEM_HELPERS, {})


def test_an_example_credentials_document_in_installed_code_stays():
    """google-auth's docstring shows a whole credentials JSON with placeholder values: a rule that
    matches the whole document must not replace it (nor the code around it)."""
    spec = importlib.util.find_spec("google.auth.external_account_authorized_user")
    with open(spec.origin, encoding="utf-8") as f:
        text = f.read()
    assert '"client_secret": "clientSecret"' in text
    assert set(kinds(text)) <= {"email", "ipv4", "ipv6"}  # no secret kind replaced


def test_npm_token_replacement_keeps_the_rest_of_the_line():
    token = "npm_" + "Xk3mP9qL2vN8rT5wY7zB4cD6fG1hJ0sA3eU5"
    text = f"//registry.npmjs.org/:_authToken={token} # ci\nalways-auth=true\n"
    assert scrub(text) == "//registry.npmjs.org/:_authToken=<KEY> # ci\nalways-auth=true\n"


def test_artifactory_token_replacement_keeps_its_quotes_and_the_file_parses():
    token = "AKCp8" + "hW3mwoCK3fLeYjabXiyvUWZNuyCvbM2KpCKes5ylmfKpEVlczTslFzEVTVjaBIQbb1234"
    text = f'ARTIFACTORY = {{"url": "https://repo.acme.io", "token": "{token}"}}\n'
    out = scrub(text)
    assert out == 'ARTIFACTORY = {"url": "https://repo.acme.io", "token": "<KEY>"}\n'
    ast.parse(out)


def test_json_and_yaml_configs_still_parse():
    doc = {"owner": "maria.garcia@polimi.it", "upstream": "52.14.3.9", "keys": {"google": GOOGLE, "aws": AWS_ID}}
    for text, parse in ((json.dumps(doc, indent=2), json.loads), (yaml.safe_dump(doc), yaml.safe_load)):
        out = scrub(text)
        assert parse(out) == {"owner": REPLACEMENT, "upstream": IP, "keys": {"google": "<KEY>", "aws": "<KEY>"}}


# ---- emails in query strings and in other scripts leaked; code was taken for emails --------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ('<a href="https://crm.tradewinds.co.uk/unsubscribe?email=yuki.nair@polimi.it&amp;list=3">',
         f'<a href="https://crm.tradewinds.co.uk/unsubscribe?email={REPLACEMENT}&amp;list=3">'),
        ("GET /track?user=orossi56%40acme-robotics.io&ok=1", f"GET /track?user={REPLACEMENT}&ok=1"),
        ("# Maintainer: Jürgen <jürgen@bücher.de>", f"# Maintainer: Jürgen <{REPLACEMENT}>"),
        ("Пишите: иван@почта.рф", f"Пишите: {REPLACEMENT}"),
        ("联系 张伟@公司.中国 获取数据", f"联系 {REPLACEMENT} 获取数据"),
        ("Mehmet.Yilmaz@Acme-Robotics.IO", REPLACEMENT),
    ],
)  # fmt: skip
def test_query_string_idn_and_mixed_case_emails_are_replaced(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "    def project(self, x):\n        return x@self.weight.data\n",
        'KEX = ["curve25519-sha256@libssh.org", "sntrup761x25519-sha512@openssh.com"]',
        'CIPHERS = ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"]\nMACS = ["hmac-sha2-512-etm@openssh.com"]',
    ],
)
def test_code_name_chains_and_ssh_algorithm_names_stay(text):
    assert scrub_text(text, CONFIG) == (text, {})
