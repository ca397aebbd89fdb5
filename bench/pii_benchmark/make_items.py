"""Write items.jsonl, the PII benchmark's labelled items (policy: README.md beside this file).

Each template below is realistic material with made-up values planted in it
(`values.py`); labelled values are wrapped in markers that become spans here. Every
template runs `COPIES` times with fresh values from one seeded generator, so the file
is reproducible. Python, JSON and YAML items are checked to parse.

    python bench/pii_benchmark/make_items.py     # rewrites bench/pii_benchmark/items.jsonl
"""

from __future__ import annotations

import ast
import json
import os
import sys
import textwrap

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from values import BODY, CLOSE, DOMAINS, OPEN, RESOLVERS_V4, RESOLVERS_V6, SEP, Values, label  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ITEMS = os.path.join(HERE, "items.jsonl")
COPIES = 8
SEED = 20261207


def strip_labels(marked: str) -> tuple[str, list[dict]]:
    """(text without markers, labels with spans in that text)."""
    out, labels, i = [], [], 0
    length = 0
    while True:
        j = marked.find(OPEN, i)
        if j < 0:
            out.append(marked[i:])
            return "".join(out), labels
        out.append(marked[i:j])
        length += j - i
        sep, body, close = marked.index(SEP, j), marked.index(BODY, j), marked.index(CLOSE, j)
        kind, subkind, value = marked[j + 1 : sep], marked[sep + 1 : body], marked[body + 1 : close]
        labels.append({"start": length, "end": length + len(value), "kind": kind, "subkind": subkind})
        out.append(value)
        length += len(value)
        i = close + 1


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def notebook(cells: list[tuple[str, str, str | None]]) -> str:
    """A .ipynb document: cells of (type, source, text output or None)."""
    out = []
    for n, (kind, source, output) in enumerate(cells):
        cell = {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True)}
        if kind == "code":
            cell["execution_count"] = n + 1
            cell["outputs"] = (
                [{"name": "stdout", "output_type": "stream", "text": output.splitlines(keepends=True)}] if output else []
            )
        out.append(cell)
    meta = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    return json.dumps({"cells": out, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}, indent=1, ensure_ascii=False)


def escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def so_thread(title: str, question: str, answers: list[str]) -> str:
    posts = [f"<h1>{title}</h1>", f'<div class="question">{question}</div>']
    posts += [f'<div class="answer">{a}</div>' for a in answers]
    return "\n".join(posts)


# --- code ---------------------------------------------------------------------------------------


def py_django_settings(v: Values):
    return (
        "code",
        "python",
        dedent(f'''
        """Production settings for the billing service."""
        import os

        DEBUG = False
        ALLOWED_HOSTS = ["billing.{v.pick(DOMAINS)}", "{v.ipv4()}", "127.0.0.1", "{v.private_ipv4()}"]
        ADMINS = [("{v.name()}", "{v.email()}"), ("Ops", "{v.email()}")]
        DEFAULT_FROM_EMAIL = "no-reply@example.com"
        EMAIL_HOST = "smtp.sendgrid.net"
        EMAIL_HOST_USER = "apikey"
        EMAIL_HOST_PASSWORD = "{v.secret("sendgrid")}"
        AWS_ACCESS_KEY_ID = "{v.secret("aws-key-id")}"
        AWS_SECRET_ACCESS_KEY = "{v.secret("aws-secret")}"
        AWS_STORAGE_BUCKET_NAME = "billing-static"
        STATIC_VERSION = "{v.version4()}"
    '''),
    )


def py_boto3(v: Values):
    return (
        "code",
        "python",
        dedent(f'''
        import boto3

        # TODO: move to the secrets manager before launch ({v.email()})
        session = boto3.Session(
            aws_access_key_id='{v.secret("aws-key-id")}',
            aws_secret_access_key='{v.secret("aws-secret")}',
            region_name="eu-central-1",
        )
        s3 = session.client("s3")
        for obj in s3.list_objects_v2(Bucket="reports")["Contents"]:
            print(obj["Key"], obj["ETag"])  # ETag is an md5 such as "{v.sha1()[:32]}"
    '''),
    )


def py_api_clients(v: Values):
    sub = v.pick(("github", "huggingface", "openai", "anthropic", "gitlab"))
    header = {"github": "token", "gitlab": "Bearer", "huggingface": "Bearer", "openai": "Bearer", "anthropic": "Bearer"}[sub]
    return (
        "code",
        "python",
        dedent(f'''
        import requests

        API = "https://api.service.local/v2"
        TOKEN = "{v.secret(sub)}"  # rotated monthly
        FALLBACK = "{v.placeholder()}"


        def fetch(path, timeout=10):
            headers = {{"Authorization": "{header} " + TOKEN, "User-Agent": "sync-bot/{v.version4()}"}}
            return requests.get(f"{{API}}/{{path}}", headers=headers, timeout=timeout).json()
    '''),
    )


def py_author_header(v: Values):
    return (
        "code",
        "python",
        dedent(f'''
        # -*- coding: utf-8 -*-
        # Copyright 2021 {v.name()} <{v.email()}>
        # Maintainer: {v.name()} <{v.idn_email()}>
        """Small helpers for parsing sensor logs."""

        __author__ = "{v.name()}"
        __email__ = "{v.email()}"
        __version__ = "{v.version4()}"
        __uuid__ = "{v.uuid()}"


        def parse(line: str) -> dict:
            ts, _, rest = line.partition(" ")
            return {{"ts": ts, "payload": rest}}
    '''),
    )


def py_x509(v: Values):
    return (
        "code",
        "python",
        dedent(f"""
        from cryptography import x509
        from cryptography.x509.oid import ObjectIdentifier

        COMMON_NAME = ObjectIdentifier("2.5.4.3")
        ORGANIZATION = ObjectIdentifier("2.5.4.10")
        SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
        EC_PUBLIC_KEY = ObjectIdentifier("1.2.840.10045.2.1")
        CUSTOM_EXT = ObjectIdentifier("1.3.6.1.4.1.{v.rng.randrange(1000, 60000)}.1.1")
        PEM_HEADER = "-----BEGIN CERTIFICATE-----"


        def subject_cn(cert: x509.Certificate) -> str:
            # the OCSP responder lives at {v.ipv4()}, see ticket from {v.email()}
            return cert.subject.get_attributes_for_oid(COMMON_NAME)[0].value
    """),
    )


def py_torch_module(v: Values):
    return (
        "code",
        "python",
        dedent(f'''
        import torch
        from torch import nn


        class Attention(nn.Module):
            """Scaled dot-product attention. Questions to {v.email()}."""

            def __init__(self, dim: int):
                super().__init__()
                self.weight = nn.Parameter(torch.randn(dim, dim))

            @torch.no_grad()
            def project(self, x):
                return x@self.weight.data

            @property
            def scale(self):
                return self.weight.shape[-1] ** -0.5

            def forward(self, q, k, v):
                scores = q@k.mT * self.scale
                return scores.softmax(-1)@v
    '''),
    )


def py_pem_constants(v: Values):
    return (
        "code",
        "python",
        dedent(f'''
        """Helpers for PEM files (the markers below are constants, not keys)."""
        import base64

        BEGIN_RSA = "-----BEGIN RSA PRIVATE KEY-----"
        END_RSA = "-----END RSA PRIVATE KEY-----"
        BEGIN_ANY = b"-----BEGIN PRIVATE KEY-----"
        HASH = "{v.sha256()}"


        def is_rsa_key(text: str) -> bool:
            return text.startswith(BEGIN_RSA) and text.rstrip().endswith(END_RSA)


        def body(text: str) -> bytes:
            lines = text.strip().splitlines()[1:-1]
            return base64.b64decode("".join(lines))


        END_ANY = b"-----END PRIVATE KEY-----"
    '''),
    )


def py_test_fixture_key(v: Values):
    kind = v.pick(("RSA", "EC", "", "OPENSSH", "DSA"))
    return (
        "code",
        "python",
        dedent('''
        import pytest

        PUBLIC = """{public}"""

        SIGNING_KEY = """{key}"""


        @pytest.fixture
        def signer():
            return load_signer(SIGNING_KEY.encode())
    ''').format(public=v.public_key(), key=label("secret", "private-key", v.pem(kind))),
    )


def py_sockets(v: Values):
    return (
        "code",
        "python",
        dedent(f'''
        import socket

        UPSTREAM = ("{v.ipv4()}", 443)
        UPSTREAM_V6 = ("{v.ipv6()}", 443)
        LOCAL = ("{v.private_ipv6()}", 8080)
        DNS = ["{v.pick(RESOLVERS_V4)}", "{v.pick(RESOLVERS_V6)}"]
        NETMASK = "255.255.255.0"


        def serve():
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.bind(("::", 8080))
            s.connect(UPSTREAM)  # was {v.private_ipv4()} before the move
            return s
    '''),
    )


def py_paramiko(v: Values):
    return (
        "code",
        "python",
        dedent(f'''
        import paramiko

        HOST = "{v.ipv4()}"
        KEX = ["curve25519-sha256@libssh.org", "diffie-hellman-group-exchange-sha256"]
        CIPHERS = ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"]
        MACS = ["hmac-sha2-512-etm@openssh.com"]


        def run(cmd):
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            client.connect(HOST, username="deploy", key_filename="~/.ssh/id_ed25519")
            # same as: ssh deploy@{v.ipv4()} -p 2222
            return client.exec_command(cmd)
    '''),
    )


def py_hashes(v: Values):
    return (
        "code",
        "python",
        dedent(f'''
        """Pinned downloads: every file is checked against its digest."""

        DOWNLOADS = {{
            "model-{v.version4()}.bin": "{v.sha256()}",
            "vocab.txt": "{v.sha256()}",
            "merges.txt": "{v.sha1()}",
        }}
        RUN_ID = "{v.uuid()}"
        COMMIT = "{v.sha1()}"
        INTEGRITY = "{v.integrity()}"
        MIRROR = "https://{v.ipv4()}/models/"
    '''),
    )


def py_openai(v: Values):
    return (
        "code",
        "python",
        dedent(f'''
        from openai import OpenAI

        client = OpenAI(api_key="{v.secret("openai")}")
        # client = OpenAI(api_key="sk-...")  # the docs' placeholder
        reply = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{{"role": "user", "content": "Summarise the ticket from {v.email()}"}}],
        )
        print(reply.choices[0].message.content)
    '''),
    )


def py_slack_stripe(v: Values):
    return (
        "code",
        "python",
        dedent(f'''
        import stripe
        from slack_sdk import WebClient

        stripe.api_key = "{v.secret("stripe")}"
        slack = WebClient(token="{v.secret("slack")}")
        TEST_KEY = "sk_test_{"x" * 24}"


        def notify(charge_id):
            charge = stripe.Charge.retrieve(charge_id)
            slack.chat_postMessage(channel="#billing", text=f"{{charge.amount}} from {{charge.receipt_email}}")
    '''),
    )


def py_jwt_test(v: Values):
    return (
        "code",
        "python",
        dedent(f'''
        import jwt


        def test_decodes_the_session_cookie():
            token = "{v.secret("jwt")}"
            claims = jwt.decode(token, options={{"verify_signature": False}})
            assert claims["sub"]
            assert "{v.uuid()}" != claims["sub"]
    '''),
    )


def py_misc_tokens(v: Values):
    sub1, sub2 = v.pick(("twilio", "discord", "telegram", "mailchimp")), v.pick(("npm", "pypi", "artifactory", "google-api"))
    return (
        "code",
        "python",
        dedent(f'''
        import os

        CONFIG = {{
            "bot_token": os.environ.get("BOT_TOKEN", "{v.secret(sub1)}"),
            "registry_token": "{v.secret(sub2)}",
            "placeholder": "{v.placeholder()}",
            "build": "{v.sha1()}",
        }}
    '''),
    )


def py_sentence_ips(v: Values):
    return (
        "code",
        "python",
        dedent(f'''
        def check_firewall(rules):
            """Our egress proxy is {v.ipv4()}. Traffic to {v.private_ipv4()} stays inside the VPC.

            The IPv6 gateway is {v.ipv6()}. See RFC 5737: 192.0.2.1 is an example address.
            """
            allowed = {{"{v.ipv4()}/32", "10.0.0.0/8"}}
            return [r for r in rules if r.cidr in allowed]
    '''),
    )


def js_mailer(v: Values):
    return (
        "code",
        "javascript",
        dedent(f'''
        const sgMail = require("@sendgrid/mail");
        sgMail.setApiKey("{v.secret("sendgrid")}");

        // depends on "lodash@4.17.21" and "@babel/core@7.24.0"
        const msg = {{
          to: "{v.email()}",
          from: "{v.email()}",
          subject: "Your invoice",
          replyTo: "support@example.org",
        }};
        module.exports = async function send() {{ return sgMail.send(msg); }};
    '''),
    )


def ts_firebase(v: Values):
    return (
        "code",
        "typescript",
        dedent(f'''
        import {{ initializeApp }} from "firebase/app";

        export const firebaseConfig = {{
          apiKey: "{v.secret("google-api")}",
          authDomain: "shop-{v.rng.randrange(1000, 9999)}.firebaseapp.com",
          projectId: "shop-prod",
          appId: "1:{v.rng.randrange(10**11, 10**12)}:web:{v.sha1()[:22]}",
        }};
        export const app = initializeApp(firebaseConfig);
        // contact: {v.email()}
    '''),
    )


def go_client(v: Values):
    return (
        "code",
        "go",
        dedent(f'''
        package main

        import (
        \t"net"
        \t"net/http"
        )

        const apiToken = "{v.secret(v.pick(("github", "gitlab", "slack")))}"
        const upstream = "{v.ipv4()}:8443"
        const upstream6 = "[{v.ipv6()}]:8443"
        const localDev = "127.0.0.1:8080"

        func dial() (net.Conn, error) {{
        \treq, _ := http.NewRequest("GET", "https://{v.ipv4()}/health", nil)
        \treq.Header.Set("Authorization", "Bearer "+apiToken)
        \treturn net.Dial("tcp", upstream)
        }}
    '''),
    )


def java_service(v: Values):
    return (
        "code",
        "java",
        dedent(f'''
        package com.example.billing;

        /**
         * Billing gateway client.
         * @author {v.name()} ({v.email()})
         * @since {v.version4()}
         */
        public class GatewayClient {{
            private static final String API_KEY = "{v.secret(v.pick(("stripe", "twilio", "sendgrid")))}";
            private static final String SIGNATURE_OID = "1.2.840.113549.1.1.11";
            private static final String HOST = "{v.ipv4()}";

            @Override
            public String toString() {{
                return "GatewayClient[" + HOST + "]";
            }}
        }}
    '''),
    )


def ruby_config(v: Values):
    return (
        "code",
        "ruby",
        dedent(f'''
        # Gemfile.lock pins rails 7.0.4.3; see https://rubygems.org
        Rails.application.configure do
          config.action_mailer.default_options = {{ from: "{v.email()}" }}
          config.x.stripe_secret = "{v.secret("stripe")}"
          config.hosts << "{v.ipv4()}"
          config.hosts << "{v.private_ipv4()}"
        end
        # maintained by {v.name()} <{v.email()}>
    '''),
    )


def php_mailer(v: Values):
    return (
        "code",
        "php",
        dedent(f"""
        <?php
        $mail = new PHPMailer(true);
        $mail->isSMTP();
        $mail->Host = '{v.ipv4()}';
        $mail->Username = '{v.email()}';
        $mail->Password = '{v.placeholder()}';
        $mail->setFrom('{v.email()}', '{v.name()}');
        $mail->addAddress('{v.email()}');
        $hash = '{v.sha256()}';
        $mail->send();
    """),
    )


def rust_server(v: Values):
    return (
        "code",
        "rust",
        dedent(f'''
        use std::net::{{IpAddr, Ipv6Addr, SocketAddr}};

        // Contact: {v.email()}
        const PEER: &str = "{v.ipv4()}:9000";
        const PEER6: &str = "{v.ipv6()}";
        const HF_TOKEN: &str = "{v.secret("huggingface")}";

        fn main() {{
            let local = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 9000);
            let peer: SocketAddr = PEER.parse().unwrap();
            println!("{{}} -> {{}} v{v.version4()}", local, peer);
        }}
    '''),
    )


def csharp_storage(v: Values):
    key = v.secret("azure-storage")
    return (
        "code",
        "csharp",
        dedent(f"""
        using Azure.Storage.Blobs;

        public static class Storage
        {{
            // owner: {v.email()}
            private const string ConnectionString =
                "DefaultEndpointsProtocol=https;AccountName=prodlogs;AccountKey={key};EndpointSuffix=core.windows.net";

            [Obsolete("use the managed identity")]
            public static BlobServiceClient Client() => new BlobServiceClient(ConnectionString);
        }}
    """),
    )


def shell_deploy(v: Values):
    return (
        "code",
        "shell",
        dedent(f"""
        #!/usr/bin/env bash
        set -euo pipefail
        HOST={v.ipv4()}
        export GITHUB_TOKEN={v.secret("github")}
        export NPM_TOKEN=${{NPM_TOKEN:-changeme}}
        ssh -o StrictHostKeyChecking=no deploy@{v.ipv4()} 'sudo systemctl restart api'
        scp build.tar.gz ubuntu@$HOST:/srv/
        ./manage --host={v.ipv4()} --port=8443 --bind=0.0.0.0
        curl -H "Authorization: token $GITHUB_TOKEN" https://api.github.com/user
        git clone git@github.com:acme/api.git
        echo "done, mail {v.email()} if it broke"
    """),
    )


def shell_curl(v: Values):
    sub = v.pick(("openai", "anthropic", "huggingface", "stripe"))
    return (
        "code",
        "shell",
        dedent(f'''
        # reproduce the 429 from {v.ipv4()}.
        curl https://api.vendor.io/v1/messages \\
          -H "x-api-key: {v.secret(sub)}" \\
          -H "content-type: application/json" \\
          -d '{{"prompt": "hello", "user": "{v.email()}"}}'
        ping -c 3 {v.ipv6()}
        dig @{v.pick(RESOLVERS_V4)} example.com
    '''),
    )


def dockerfile(v: Values):
    return (
        "config",
        "dockerfile",
        dedent(f'''
        FROM node@sha256:{v.sha256()}
        LABEL maintainer="{v.email()}"
        ENV NPM_TOKEN={v.secret("npm")}
        ENV API_HOST={v.ipv4()}
        RUN npm ci && npm install -g pnpm@8.15.4
        EXPOSE 8080
    '''),
    )


# --- configuration ------------------------------------------------------------------------------


def dotenv(v: Values):
    return (
        "config",
        "env",
        dedent(f"""
        # .env (production)
        APP_ENV=production
        DB_HOST={v.ipv4()}
        DB_REPLICA={v.private_ipv4()}
        REDIS_URL=redis://:{v.placeholder()}@10.0.3.7:6379/0
        ADMIN_EMAIL={v.email()}
        AWS_ACCESS_KEY_ID={v.secret("aws-key-id")}
        AWS_SECRET_ACCESS_KEY={v.secret("aws-secret")}
        STRIPE_SECRET_KEY={v.secret("stripe")}
        OPENAI_API_KEY={v.secret("openai")}
        SENTRY_RELEASE={v.sha1()}
        FEATURE_FLAGS_ID={v.uuid()}
    """),
    )


def dotenv_example(v: Values):
    return (
        "config",
        "env",
        dedent(f"""
        # Copy to .env and fill in. Never commit real values.
        AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
        AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
        GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
        OPENAI_API_KEY=YOUR_KEY_HERE
        SLACK_BOT_TOKEN=xoxb-your-token
        API_KEY={v.placeholder()}
        DB_HOST=127.0.0.1
        SMTP_USER=user@localhost
        CONTACT=you@example.com
    """),
    )


def aws_credentials(v: Values):
    return (
        "config",
        "ini",
        dedent(f"""
        [default]
        aws_access_key_id = {v.secret("aws-key-id")}
        aws_secret_access_key = {v.secret("aws-secret")}
        region = us-east-1

        [ci]
        aws_access_key_id={v.secret("aws-key-id")}
        aws_secret_access_key={v.secret("aws-secret")}
    """),
    )


def setup_cfg(v: Values):
    return (
        "config",
        "ini",
        dedent(f"""
        [metadata]
        name = sensorlog
        version = {v.version4()}
        author = {v.name()}
        author_email = {v.email()}
        url = https://github.com/acme/sensorlog

        [options]
        install_requires =
            requests==2.31.0
            pywin32==306.1.2.3
    """),
    )


def pypirc(v: Values):
    return (
        "config",
        "ini",
        dedent(f"""
        [distutils]
        index-servers = pypi

        [pypi]
        username = __token__
        password = {v.secret("pypi")}
    """),
    )


def gitconfig(v: Values):
    return (
        "config",
        "ini",
        dedent(f"""
        [user]
            name = {v.name()}
            email = {v.email()}
            signingkey = {v.sha1()[:16].upper()}
        [url "git@github.com:"]
            insteadOf = https://github.com/
    """),
    )


def compose_yaml(v: Values):
    return (
        "config",
        "yaml",
        dedent(f'''
        version: "3.9"
        services:
          api:
            image: registry.acme.io/api:{v.version4()}
            environment:
              DATABASE_HOST: {v.ipv4()}
              OPENAI_API_KEY: {v.secret("openai")}
              HF_TOKEN: "{v.secret("huggingface")}"
              ADMIN: "{v.email()}"
              PLACEHOLDER: "{v.placeholder()}"
            extra_hosts:
              - "metrics:{v.ipv4()}"
              - "cache:{v.private_ipv4()}"
            dns:
              - {v.pick(RESOLVERS_V4)}
    '''),
    )


def actions_yaml(v: Values):
    return (
        "config",
        "yaml",
        dedent(f'''
        name: release
        on:
          push:
            tags: ["v*"]
        jobs:
          publish:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@v4
              - uses: pypa/gh-action-pypi-publish@release/v1
                with:
                  password: ${{{{ secrets.PYPI_TOKEN }}}}
              - run: git config user.email "{v.email()}"
              - run: curl -X POST -d "ref=$GITHUB_SHA" https://{v.ipv4()}/hooks/deploy
    '''),
    )


def netplan_yaml(v: Values):
    return (
        "config",
        "yaml",
        dedent(f'''
        network:
          version: 2
          ethernets:
            eth0:
              addresses:
                - {v.ipv4()}/24
                - "{v.ipv6()}/64"
              routes:
                - to: default
                  via: {v.ipv4()}
              nameservers:
                addresses: [{v.pick(RESOLVERS_V4)}, "{v.pick(RESOLVERS_V6)}"]
            eth1:
              addresses: [{v.private_ipv4()}/16, "{v.private_ipv6()}/64"]
    '''),
    )


def k8s_secret_yaml(v: Values):
    return (
        "config",
        "yaml",
        dedent(f'''
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: api-config
          annotations:
            owner: "{v.email()}"
            checksum/config: "{v.sha256()}"
        data:
          SLACK_TOKEN: "{v.secret("slack")}"
          GITLAB_TOKEN: "{v.secret("gitlab")}"
          UPSTREAM: "{v.ipv4()}"
          RUN_ID: "{v.uuid()}"
    '''),
    )


def json_config(v: Values):
    doc = {
        "service": "payments",
        "version": v.version4(),
        "owner": v.email(),
        "upstream": {"host": v.ipv4(), "port": 443, "fallback": v.private_ipv4()},
        "keys": {"google": v.secret("google-api"), "stripe": v.secret("stripe"), "test": v.placeholder()},
        "integrity": v.integrity(),
    }
    return "config", "json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def package_json(v: Values):
    doc = {
        "name": "@acme/widgets",
        "version": f"2.{v.rng.randrange(20)}.{v.rng.randrange(20)}",
        "author": f"{v.name()} <{v.email()}>",
        "contributors": [v.email(), v.email()],
        "scripts": {"deploy": f"rsync -az dist/ deploy@{v.ipv4()}:/var/www/"},
        "dependencies": {"lodash": "^4.17.21", "react": "18.2.0"},
        "resolutions": {"@types/node@20.11.5": "20.11.5"},
    }
    return "config", "json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def package_lock(v: Values):
    packages = {
        f"node_modules/{name}": {
            "version": f"{v.rng.randrange(1, 9)}.{v.rng.randrange(30)}.{v.rng.randrange(9)}",
            "resolved": f"https://registry.npmjs.org/{name}/-/{name}-1.0.0.tgz",
            "integrity": v.integrity(),
        }
        for name in ("lodash", "chalk", "ms", "debug")
    }
    doc = {"name": "widgets", "lockfileVersion": 3, "requires": True, "packages": packages}
    return "config", "json", json.dumps(doc, indent=2) + "\n"


def npmrc(v: Values):
    return (
        "config",
        "ini",
        dedent(f"""
        registry=https://registry.npmjs.org/
        //registry.npmjs.org/:_authToken={v.secret("npm")}
        @acme:registry=https://npm.pkg.github.com
        //npm.pkg.github.com/:_authToken=${{GITHUB_TOKEN}}
        email={v.email()}
        always-auth=true
    """),
    )


def pyproject_toml(v: Values):
    return (
        "config",
        "toml",
        dedent(f'''
        [project]
        name = "sensorlog"
        version = "{v.version4()}"
        authors = [{{ name = "{v.name()}", email = "{v.email()}" }}]
        maintainers = [{{ name = "{v.name()}", email = "{v.idn_email()}" }}]
        dependencies = ["requests>=2.31", "numpy==1.26.4"]
    '''),
    )


def nginx_conf(v: Values):
    return (
        "config",
        "nginx",
        dedent(f"""
        upstream backend {{
            server {v.ipv4()}:8080 weight=3;
            server {v.ipv4()}:8080;
            server {v.private_ipv4()}:8080 backup;
        }}
        server {{
            listen 80;
            listen [::]:80;
            listen [{v.ipv6()}]:443 ssl;
            allow 10.0.0.0/8;
            allow {v.ipv4()};
            deny all;
            resolver {v.pick(RESOLVERS_V4)} valid=300s;
            ssl_protocols TLSv1.2 TLSv1.3;
        }}
    """),
    )


def ssh_config(v: Values):
    return (
        "config",
        "ssh",
        dedent(f"""
        Host bastion
            HostName {v.ipv4()}
            User {v.pick(("ec2-user", "ubuntu", "admin"))}
            IdentityFile ~/.ssh/bastion_ed25519
            KexAlgorithms curve25519-sha256@libssh.org,sntrup761x25519-sha512@openssh.com
            Ciphers chacha20-poly1305@openssh.com
        Host db
            HostName {v.private_ipv4()}
            ProxyJump bastion
        Host v6
            HostName {v.ipv6()}
    """),
    )


def id_key_file(v: Values):
    kind = v.pick(("OPENSSH", "RSA", "EC", "", "ENCRYPTED"))
    return "config", "text", label("secret", "private-key", v.pem(kind)) + "\n"


def putty_key(v: Values):
    return "config", "text", label("secret", "private-key", v.putty()) + "\n"


def cert_bundle(v: Values):
    return "config", "text", v.certificate() + "\n" + v.public_key() + "\n" + v.ssh_public() + "\n"


def streamlit_secrets(v: Values):
    return (
        "config",
        "toml",
        dedent(f'''
        # .streamlit/secrets.toml
        ANTHROPIC_API_KEY = "{v.secret("anthropic")}"
        TELEGRAM_BOT_TOKEN = "{v.secret("telegram")}"
        MAILCHIMP_API_KEY = "{v.secret("mailchimp")}"
        ARTIFACTORY_API_KEY = "{v.secret("artifactory")}"
        SUPPORT = "{v.email()}"
        BUILD = "{v.sha256()}"
    '''),
    )


def py_bots(v: Values):
    return (
        "code",
        "python",
        dedent(f'''
        import discord
        from anthropic import Anthropic
        from twilio.rest import Client

        DISCORD_TOKEN = "{v.secret("discord")}"
        TWILIO_API_KEY_SECRET = "{v.secret("twilio")}"
        claude = Anthropic(api_key="{v.secret("anthropic")}")
        bot = discord.Client(intents=discord.Intents.default())


        @bot.event
        async def on_message(message):
            if message.content.startswith("!ask"):
                reply = claude.messages.create(model="claude-3-5-sonnet-latest", max_tokens=300,
                                               messages=[{{"role": "user", "content": message.content[4:]}}])
                await message.channel.send(reply.content[0].text)
    '''),
    )


# --- notebooks ----------------------------------------------------------------------------------


def nb_openai(v: Values):
    return (
        "notebook",
        "json",
        notebook(
            [
                ("markdown", f"# Churn analysis\nAsk {v.email()} for the data export.", None),
                ("code", f'import os\nos.environ["OPENAI_API_KEY"] = "{v.secret("openai")}"\nimport pandas as pd', None),
                ("code", "df = pd.read_csv('churn.csv')\ndf.shape", "(48213, 17)\n"),
                ("code", "!curl -s ifconfig.me", v.ipv4() + "\n"),
            ]
        ),
    )


def nb_hf(v: Values):
    return (
        "notebook",
        "json",
        notebook(
            [
                ("code", f'from huggingface_hub import login\nlogin(token="{v.secret("huggingface")}")', "Login successful\n"),
                ("code", "!pip install transformers==4.41.2 accelerate==0.30.1", "Successfully installed transformers-4.41.2\n"),
                ("code", "import torch\nx = torch.randn(4, 4)\ny = x@x.T", None),
                ("markdown", f"Run `{v.uuid()}`, commit `{v.sha1()}`.", None),
            ]
        ),
    )


def nb_traps(v: Values):
    return (
        "notebook",
        "json",
        notebook(
            [
                ("markdown", "## Network sanity checks", None),
                ("code", f'import ipaddress\nprint(ipaddress.ip_address("{v.private_ipv4()}").is_private)', "True\n"),
                ("code", f'API_KEY = "{v.placeholder()}"  # set me\nimport sdk\nprint(sdk.__version__)', f"{v.version4()}\n"),
                (
                    "code",
                    f"!ssh-keygen -lf key.pub\n# {v.ssh_public()}",
                    f"256 SHA256:{v.chars('abcdefABCDEF0123456789+/', 43)} (ED25519)\n",
                ),
            ]
        ),
    )


def nb_aws(v: Values):
    return (
        "notebook",
        "json",
        notebook(
            [
                (
                    "code",
                    f'import boto3\ns3 = boto3.client("s3", aws_access_key_id="{v.secret("aws-key-id")}",\n'
                    f'                  aws_secret_access_key="{v.secret("aws-secret")}")',
                    None,
                ),
                ("code", "s3.list_buckets()['Owner']", f"{{'DisplayName': 'ops', 'ID': '{v.sha256()}'}}\n"),
                ("code", "import socket\nsocket.gethostbyname('api.internal')", f"'{v.ipv4()}'\n"),
            ]
        ),
    )


# --- StackOverflow ------------------------------------------------------------------------------


def so_connection(v: Values):
    code = escape_html(f"conn = psycopg2.connect(host='{v.ipv4()}', user='app', password='{v.placeholder()}')")
    return (
        "stackoverflow",
        "html",
        so_thread(
            "psycopg2 OperationalError: could not connect to server",
            f"<p>My Flask app cannot reach the database at {v.ipv4()}. It worked from {v.private_ipv4()}.</p>"
            f"<pre><code>{code}</code></pre>",
            [
                f"<p>Open port 5432 in the security group, then try <code>psql -h {v.ipv4()}</code>. "
                f"Pinging {v.pick(RESOLVERS_V4)} only proves you have internet.</p>"
            ],
        ),
    )


def so_leaked_key(v: Values):
    sub = v.pick(("aws-key-id", "github", "google-api", "stripe", "slack", "openai", "anthropic", "huggingface", "gitlab", "jwt"))
    code = escape_html(f'client = Client(key="{v.secret(sub)}")\nclient.ping()')
    return (
        "stackoverflow",
        "html",
        so_thread(
            "Why does my API client return 401?",
            f"<p>Here is my code:</p><pre><code>{code}</code></pre><p>The docs say to use YOUR_API_KEY.</p>",
            [
                f"<p>You pasted your real key; revoke it now. Use an environment variable instead of "
                f"<code>{escape_html(v.placeholder())}</code>.</p>"
            ],
        ),
    )


def so_emails(v: Values):
    return (
        "stackoverflow",
        "html",
        so_thread(
            "Validate an email address in a URL query string",
            f'<p>My link is <a href="https://crm.tradewinds.co.uk/unsubscribe?email={v.email()}&amp;list=3">unsubscribe</a> '
            f"and the encoded one is <code>/track?user={label_pct(v)}&amp;ok=1</code>.</p>",
            [
                f"<p>Write to {v.email()}. Also works for {v.idn_email()} and {v.email()}.</p>",
                "<p>Use <code>git@github.com:owner/repo.git</code>, not <code>user@localhost</code>, "
                "and pin <code>pnpm add react@18.2.0</code>.</p>",
            ],
        ),
    )


def label_pct(v: Values) -> str:
    value = v.email_value().replace("@", "%40")
    return label("email", "email", value)


def so_ipv6(v: Values):
    return (
        "stackoverflow",
        "html",
        so_thread(
            "Nginx not listening on IPv6",
            f"<p>My server's address is {v.ipv6()} and <code>curl -6 http://[{v.ipv6()}]/</code> times out.</p>"
            f"<p>The docs use 2001:db8::1 and {v.private_ipv6()}.</p>",
            [
                f"<p>Add <code>listen [::]:80;</code>. From outside, try {v.ipv6()}. Google's resolver "
                f"{v.pick(RESOLVERS_V6)} answers AAAA queries.</p>"
            ],
        ),
    )


def so_private_key(v: Values):
    truncated = v.rng.random() < 0.5
    key = label("secret", "private-key", v.truncated_pem() if truncated else v.pem(v.pick(("RSA", "OPENSSH", "ENCRYPTED"))))
    key += "\n..." if truncated else ""
    return (
        "stackoverflow",
        "html",
        so_thread(
            "paramiko: not a valid RSA private key file",
            f"<p>I load this key:</p><pre><code>{key}</code></pre>"
            f"<p>and connect to {v.ipv4()} as <code>ubuntu@{v.ipv4()}</code>.</p>",
            [f"<p>Convert it with <code>ssh-keygen -p -m PEM</code>. Your public key <code>{v.ssh_public()}</code> is fine.</p>"],
        ),
    )


def so_versions(v: Values):
    return (
        "stackoverflow",
        "html",
        so_thread(
            "Which version of the SDK do I need?",
            f"<p>I have {v.version4()} installed and the changelog mentions {v.version4()} and 1.2.840.113549.</p>",
            [
                f"<p>Upgrade to v{v.version4()}: <code>pip install sdk=={v.version4()}</code>. Section 4.3.2.1 of the spec "
                f"explains it. The hash is {v.sha256()}.</p>"
            ],
        ),
    )


TEMPLATES = (
    py_django_settings,
    py_boto3,
    py_api_clients,
    py_author_header,
    py_x509,
    py_torch_module,
    py_pem_constants,
    py_test_fixture_key,
    py_sockets,
    py_paramiko,
    py_hashes,
    py_openai,
    py_slack_stripe,
    py_jwt_test,
    py_misc_tokens,
    py_sentence_ips,
    js_mailer,
    ts_firebase,
    go_client,
    java_service,
    ruby_config,
    php_mailer,
    rust_server,
    csharp_storage,
    shell_deploy,
    shell_curl,
    dockerfile,
    dotenv,
    dotenv_example,
    aws_credentials,
    setup_cfg,
    pypirc,
    gitconfig,
    compose_yaml,
    actions_yaml,
    netplan_yaml,
    k8s_secret_yaml,
    json_config,
    package_json,
    package_lock,
    npmrc,
    pyproject_toml,
    streamlit_secrets,
    py_bots,
    nginx_conf,
    ssh_config,
    id_key_file,
    putty_key,
    cert_bundle,
    nb_openai,
    nb_hf,
    nb_traps,
    nb_aws,
    so_connection,
    so_leaked_key,
    so_emails,
    so_ipv6,
    so_private_key,
    so_versions,
)
PARSERS = {"python": ast.parse, "json": json.loads, "yaml": yaml.safe_load}


def make_items() -> list[dict]:
    values, items = Values(SEED), []
    for copy in range(COPIES):
        for template in TEMPLATES:
            source, lang, marked = template(values)
            text, labels = strip_labels(marked)
            if lang in PARSERS:
                PARSERS[lang](text)  # every Python, JSON and YAML item parses before redaction
            items.append({"id": f"{template.__name__}-{copy}", "source": source, "lang": lang, "text": text, "labels": labels})
    return items


def main() -> None:
    items = make_items()
    with open(ITEMS, "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"{len(items)} items, {sum(len(i['labels']) for i in items)} labels -> {ITEMS}")


if __name__ == "__main__":
    main()
