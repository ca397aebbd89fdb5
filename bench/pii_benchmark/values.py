"""Made-up values for the PII benchmark: each in its issuer's published format, none real.

`Values` draws them from one seeded random generator. A labelled value is wrapped in
markers (`label`) that `make_items.strip_labels` turns into spans; a trap is plain text.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import random
import string
import uuid

OPEN, SEP, BODY, CLOSE = "\ue000", "\ue001", "\ue002", "\ue003"
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"

RESOLVERS_V4 = ("8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112", "208.67.222.222", "208.67.220.220")
RESOLVERS_V6 = ("2001:4860:4860::8888", "2001:4860:4860::8844", "2606:4700:4700::1111", "2606:4700:4700::1001")
FIRST_OCTETS = (
    3,
    13,
    18,
    23,
    31,
    34,
    35,
    37,
    45,
    46,
    52,
    54,
    62,
    64,
    66,
    69,
    77,
    78,
    80,
    81,
    82,
    85,
    88,
    89,
    91,
    93,
    94,
    95,
    104,
    107,
    128,
    129,
    130,
    134,
    138,
    141,
    142,
    145,
    151,
    157,
    162,
    163,
    165,
    172,
    176,
    178,
    185,
    188,
    193,
    194,
    195,
    199,
    204,
    209,
    212,
    213,
    216,
    217,
)
V6_PREFIXES = (
    "2a00:1450:4001",
    "2607:f8b0:4004",
    "2a03:2880:f12f",
    "2600:1f18:24e6",
    "2001:470:1f0b",
    "2a01:4f8:c17",
    "2400:cb00:2048",
    "2604:a880:400",
    "2a02:6b8:c0c",
    "2620:0:2d0",
    "2a05:d014:9f4",
    "2606:2800:220",
)
FIRST = (
    "jane",
    "ravi",
    "maria",
    "li",
    "olga",
    "tomasz",
    "amara",
    "kenji",
    "lucas",
    "fatima",
    "noah",
    "ines",
    "pieter",
    "sofia",
    "mehmet",
    "chloe",
    "arjun",
    "yuki",
    "david",
    "elena",
    "omar",
    "hannah",
    "mateo",
    "priya",
)
LAST = (
    "doe",
    "kumar",
    "garcia",
    "wei",
    "petrova",
    "nowak",
    "okafor",
    "tanaka",
    "silva",
    "haddad",
    "smith",
    "moreau",
    "devries",
    "rossi",
    "yilmaz",
    "martin",
    "shah",
    "sato",
    "cohen",
    "ivanova",
    "farouk",
    "becker",
    "lopez",
    "nair",
)
DOMAINS = (
    "gmail.com",
    "outlook.com",
    "yahoo.co.jp",
    "gmx.de",
    "web.de",
    "protonmail.com",
    "acme-robotics.io",
    "nordwind-logistik.de",
    "univ-lyon1.fr",
    "cs.stanford.edu",
    "mail.ru",
    "qq.com",
    "163.com",
    "fastmail.fm",
    "icloud.com",
    "studio.engineering",
    "kiez.berlin",
    "tradewinds.co.uk",
    "hey.com",
    "polimi.it",
    "lists.datakit.dev",
    "infra.paystack-ops.ng",
    "riverbank.ca",
    "uni-heidelberg.de",
)
IDN = (
    "jürgen@bücher.de",
    "info@münchen.de",
    "иван@почта.рф",
    "张伟@公司.中国",
    "josé.núñez@correo.es",
    "anna@xn--mnchen-3ya.de",
    "kontakt@straße.de",
    "zoë@café.fr",
)


def label(kind: str, subkind: str, value: str) -> str:
    """value, marked to become a label of kind/subkind."""
    return f"{OPEN}{kind}{SEP}{subkind}{BODY}{value}{CLOSE}"


class Values:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def pick(self, seq):
        return self.rng.choice(seq)

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    # --- emails -------------------------------------------------------------------------------
    def email_value(self) -> str:
        first, last, domain = self.pick(FIRST), self.pick(LAST), self.pick(DOMAINS)
        style = self.rng.randrange(6)
        local = (
            f"{first}.{last}",
            f"{first}{last[0]}",
            f"{first[0]}{last}{self.rng.randrange(10, 99)}",
            f"{first}+{self.pick(('github', 'dev', 'ci', 'news'))}",
            f"{first}_{last}",
            f"{last}.{first}",
        )[style]
        if self.rng.random() < 0.2:
            return f"{local.title()}@{domain.split('.')[0].title()}.{'.'.join(domain.split('.')[1:]).upper()}"
        return f"{local}@{domain}"

    def email(self) -> str:
        return label("email", "email", self.email_value())

    def idn_email(self) -> str:
        return label("email", "email", self.pick(IDN))

    def name(self) -> str:
        return f"{self.pick(FIRST).title()} {self.pick(LAST).title()}"

    # --- addresses ----------------------------------------------------------------------------
    def ipv4_value(self) -> str:
        while True:
            address = ipaddress.IPv4Address(
                f"{self.pick(FIRST_OCTETS)}.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
            )
            if address.is_global and not address.is_multicast and str(address) not in RESOLVERS_V4:
                return str(address)

    def ipv6_value(self) -> str:
        groups = [f"{self.rng.randrange(1, 0xFFFF):x}" for _ in range(self.rng.choice((1, 2, 5)))]
        tail = ":".join(groups)
        text = f"{self.pick(V6_PREFIXES)}::{tail}" if len(groups) < 5 else f"{self.pick(V6_PREFIXES)}:{tail}"
        return str(ipaddress.IPv6Address(text))

    def ipv4(self) -> str:
        return label("ipv4", "ipv4", self.ipv4_value())

    def ipv6(self) -> str:
        return label("ipv6", "ipv6", self.ipv6_value())

    def private_ipv4(self) -> str:
        return self.pick(
            (
                f"10.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}",
                f"192.168.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}",
                f"172.{self.rng.randrange(16, 32)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}",
                "127.0.0.1",
                f"169.254.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}",
                f"192.0.2.{self.rng.randrange(1, 255)}",
                f"198.51.100.{self.rng.randrange(1, 255)}",
                f"203.0.113.{self.rng.randrange(1, 255)}",
                f"100.{self.rng.randrange(64, 128)}.3.4",
            )
        )

    def private_ipv6(self) -> str:
        return self.pick(
            (
                "::1",
                "fe80::1c2d:3eff:fe4f:5a6b",
                f"fd12:3456:789a:{self.rng.randrange(1, 999)}::1",
                f"2001:db8::{self.rng.randrange(1, 0xFFFF):x}",
                "2001:db8:85a3::8a2e:370:7334",
                "ff02::1",
                "::",
            )
        )

    def version4(self) -> str:
        return f"{self.rng.randrange(1, 12)}.{self.rng.randrange(0, 30)}.{self.rng.randrange(0, 20)}.{self.rng.randrange(1, 300)}"

    # --- secrets ------------------------------------------------------------------------------
    def secret(self, subkind: str) -> str:
        return label("secret", subkind, self.secret_value(subkind))

    def secret_value(self, subkind: str) -> str:  # noqa: C901 - one branch per issuer's format
        c = self.chars
        if subkind == "aws-key-id":
            return self.pick(("AKIA", "ASIA")) + c(string.ascii_uppercase + "234567", 16)
        if subkind == "aws-secret":
            return c(B64, 40)
        if subkind == "github":
            kind = self.rng.randrange(3)
            if kind == 0:
                return "github_pat_11" + c(string.ascii_uppercase + string.digits, 20) + "_" + c(ALNUM, 59)
            return self.pick(("ghp_", "gho_", "ghs_", "ghu_")) + c(ALNUM, 36)
        if subkind == "gitlab":
            return "glpat-" + c(URLSAFE, 20)
        if subkind == "slack":
            if self.rng.random() < 0.5:  # a user token: xoxp-<team>-<user>-<app>-<32 hex>
                return f"xoxp-{c(string.digits, 12)}-{c(string.digits, 12)}-{c(string.digits, 13)}-{c(HEX, 32)}"
            return f"xoxb-{c(string.digits, 12)}-{c(string.digits, 13)}-{c(ALNUM, 24)}"
        if subkind == "stripe":
            return self.pick(("sk_live_", "rk_live_")) + c(ALNUM, self.pick((24, 99)))
        if subkind == "google-api":
            return "AIza" + c(URLSAFE, 35)
        if subkind == "huggingface":
            return "hf_" + c(string.ascii_letters, 34)
        if subkind == "openai":
            if self.rng.random() < 0.5:
                return "sk-" + c(ALNUM, 20) + "T3BlbkFJ" + c(ALNUM, 20)
            return "sk-proj-" + c(URLSAFE, 74) + "T3BlbkFJ" + c(URLSAFE, 74)
        if subkind == "anthropic":
            return "sk-ant-api03-" + c(URLSAFE, 93) + "AA"
        if subkind == "npm":
            return "npm_" + c(ALNUM, 36)
        if subkind == "pypi":
            return "pypi-AgEIcHlwaS5vcmc" + c(URLSAFE, 140)
        if subkind == "sendgrid":
            return "SG." + c(URLSAFE, 22) + "." + c(URLSAFE, 43)
        if subkind == "twilio":
            return "SK" + c(HEX, 32)
        if subkind == "jwt":
            return self.jwt()
        if subkind == "artifactory":
            return "AKCp8" + c(ALNUM, 68)
        if subkind == "azure-storage":
            return c(B64, 86) + "=="
        if subkind == "discord":
            return self.pick("MN") + c(ALNUM, 23) + "." + c(URLSAFE, 6) + "." + c(URLSAFE, 27)
        if subkind == "telegram":
            return f"{self.rng.randrange(10**8, 10**10)}:AA" + c(URLSAFE, 33)
        if subkind == "mailchimp":
            return c(HEX, 32) + f"-us{self.rng.randrange(1, 21)}"
        raise ValueError(subkind)

    def jwt(self) -> str:
        def part(obj) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")

        payload = {
            "sub": str(self.rng.randrange(10**6, 10**9)),
            "name": self.name(),
            "iat": 1700000000 + self.rng.randrange(10**7),
        }
        return part({"alg": "HS256", "typ": "JWT"}) + "." + part(payload) + "." + self.chars(URLSAFE, 43)

    def base64_lines(self, n_bytes: int, width: int = 64) -> list[str]:
        body = base64.b64encode(bytes(self.rng.randrange(256) for _ in range(n_bytes))).decode()
        return [body[i : i + width] for i in range(0, len(body), width)]

    def pem(self, kind: str = "RSA") -> str:
        """A private key block: RSA, EC, OPENSSH, PKCS8 (no label), ENCRYPTED, DSA."""
        header = f"-----BEGIN {kind + ' ' if kind else ''}PRIVATE KEY-----"
        footer = header.replace("BEGIN", "END")
        extra = []
        if kind == "RSA" and self.rng.random() < 0.3:
            extra = ["Proc-Type: 4,ENCRYPTED", f"DEK-Info: AES-128-CBC,{self.chars(HEX, 32).upper()}", ""]
        size = {"EC": 121, "OPENSSH": 400, "DSA": 440}.get(kind, 600)
        width = 70 if kind == "OPENSSH" else 64
        return "\n".join([header, *extra, *self.base64_lines(size, width), footer])

    def truncated_pem(self) -> str:
        lines = self.base64_lines(300)
        return "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *lines[: self.rng.randrange(3, 6)]])

    def putty(self) -> str:
        return "\n".join(
            [
                "PuTTY-User-Key-File-3: ssh-ed25519",
                "Encryption: none",
                f"Comment: {self.pick(FIRST)}@laptop",
                "Public-Lines: 2",
                *self.base64_lines(60),
                "Private-Lines: 1",
                *self.base64_lines(48),
                f"Private-MAC: {self.chars(HEX, 64)}",
            ]
        )

    # --- traps --------------------------------------------------------------------------------
    def sha1(self) -> str:
        return hashlib.sha1(self.chars(ALNUM, 12).encode()).hexdigest()

    def sha256(self) -> str:
        return hashlib.sha256(self.chars(ALNUM, 12).encode()).hexdigest()

    def integrity(self) -> str:
        return "sha512-" + base64.b64encode(hashlib.sha512(self.chars(ALNUM, 12).encode()).digest()).decode()

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def public_key(self) -> str:
        return "\n".join(["-----BEGIN PUBLIC KEY-----", *self.base64_lines(294), "-----END PUBLIC KEY-----"])

    def certificate(self) -> str:
        return "\n".join(["-----BEGIN CERTIFICATE-----", *self.base64_lines(700), "-----END CERTIFICATE-----"])

    def ssh_public(self) -> str:
        return "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + self.chars(B64, 43) + f" {self.pick(FIRST)}@workstation"

    def placeholder(self) -> str:
        return self.pick(
            (
                "YOUR_KEY_HERE",
                "<your-api-key>",
                "${API_TOKEN}",
                "ghp_" + "x" * 36,
                "AKIAXXXXXXXXXXXXXXXX",
                "sk-...",
                "changeme",
                "********",
                "AKIAIOSFODNN7EXAMPLE",
                "{{ secrets.DEPLOY_TOKEN }}",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "xoxb-your-token",
                "hf_...",
                "<TOKEN>",
            )
        )
