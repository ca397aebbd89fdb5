"""API tokens from Google Secret Manager, for crawls whose workers have no token in their environment.

A Dataflow worker does not see the launcher's environment, so `token_env` gives it no
token. `token_secret` names a secret version instead (projects/P/secrets/S/versions/V);
each fetch worker reads it in `setup`, so the token is never in the pipeline options,
the job graph or a log, only in the client's request header. The launcher reads it once
before submitting a Dataflow job (`check_worker_token`), so a secret the run cannot
read stops the run there, naming the key and the fix.
"""

from __future__ import annotations

import os
import re

from schemas.errors import ConfigError
from schemas.sources_config import ApiSource

SECRET_VERSION = re.compile(r"projects/[^/]+/secrets/[^/]+/versions/[^/]+")


def read_secret(version: str, api_endpoint: str | None = None) -> str:
    """The secret's payload as text; with `api_endpoint`, over REST to that URL without credentials (an emulator)."""
    try:
        from google.cloud import secretmanager
    except ImportError:
        raise ImportError("token_secret needs google-cloud-secret-manager: pip install 'code-corpus[gcp]'") from None
    kwargs = {}
    if api_endpoint:
        from google.auth.credentials import AnonymousCredentials

        kwargs = {"transport": "rest", "client_options": {"api_endpoint": api_endpoint}, "credentials": AnonymousCredentials()}
    client = secretmanager.SecretManagerServiceClient(**kwargs)
    return client.access_secret_version(name=version).payload.data.decode("utf-8").strip()


def section_token(section: ApiSource) -> str | None:
    """The section's first token: from Secret Manager when token_secret names it, else from $token_env."""
    if section.token_secret:
        return read_secret(section.token_secret, section.secret_api_endpoint)
    return os.environ.get(section.token_env) if section.token_env else None


def section_tokens(section: ApiSource) -> list[str | None]:
    """Every token of the section: the first, then each of extra_tokens (a secret version, or a variable's name)."""
    extra = [
        read_secret(ref, section.secret_api_endpoint) if SECRET_VERSION.fullmatch(ref) else os.environ.get(ref)
        for ref in section.extra_tokens
    ]
    return [section_token(section), *extra]


def token_key(section: ApiSource, index: int) -> str:
    """The config key naming token `index` (for messages)."""
    if index:
        return f"extra_tokens[{index - 1}]"
    return "token_secret" if section.token_secret else "token_env"


def check_worker_token(section: ApiSource, where: str) -> None:
    """Fail before a Dataflow job is submitted when its workers would crawl without a token."""
    if not section.token_secret:
        raise ConfigError(
            f"{where}.token_secret: Dataflow workers do not see this machine's environment, so ${section.token_env} "
            "would not reach them and the crawl would run unauthenticated. Store the token in Secret Manager "
            "(gcloud secrets create NAME --data-file=-) and set token_secret: projects/PROJECT/secrets/NAME/versions/latest"
        )
    try:
        token = read_secret(section.token_secret, section.secret_api_endpoint)
    except Exception as e:  # any failure to read it: missing, no permission, no network
        raise ConfigError(
            f"{where}.token_secret: cannot read {section.token_secret} ({type(e).__name__}: {str(e)[:200]}); check the "
            "name, and grant roles/secretmanager.secretAccessor on it to you and to the workers' service account"
        ) from None
    if not token:
        raise ConfigError(f"{where}.token_secret: {section.token_secret} is empty")
    for i, ref in enumerate(section.extra_tokens):
        if not SECRET_VERSION.fullmatch(ref):
            raise ConfigError(
                f"{where}.extra_tokens[{i}]: Dataflow workers do not see this machine's environment, so ${ref} would not "
                "reach them; name a Secret Manager version (projects/PROJECT/secrets/NAME/versions/latest)"
            )
        try:
            read_secret(ref, section.secret_api_endpoint)
        except Exception as e:
            raise ConfigError(f"{where}.extra_tokens[{i}]: cannot read {ref} ({type(e).__name__}: {str(e)[:200]})") from None
