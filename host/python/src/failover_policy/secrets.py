"""Secrets by credential id: from the environment (per the config) or a caller's dict.

The guest only ever sees ids and fingerprints; the secret is attached by the host when it sends,
and `Scrub` takes it out of whatever comes back (a provider or proxy may echo the key it got).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any

from .types import CredentialInfo, HttpResponse, TransportFailure

# A secret shorter than this is not scrubbed: it cannot be told from ordinary text (removing a
# 1-letter test key would rewrite every body), and no provider issues one.
MIN_SCRUBBED = 8


def default_env_var(credential_id: str) -> str:
    return "FAILOVER_KEY_" + re.sub(r"[^A-Za-z0-9]", "_", credential_id).upper()


def fingerprint(secret: str) -> str:
    """The first 16 hex digits of sha256(secret): changes with the key, reveals nothing of it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


class Scrub:
    """Takes the secret attached to a request out of what came back: status text, headers, body,
    transport error messages. Each occurrence becomes `...` and the secret's last 4 characters
    (only `...` under 16 characters), so a message still says which key it was about. The header
    sent is `secret_prefix + secret`, so its whole value goes too."""

    def __init__(self, secret: str | None) -> None:
        self._text = secret if secret is not None and len(secret) >= MIN_SCRUBBED else ""
        self._mask_text = "..." + (self._text[-4:] if len(self._text) >= 16 else "")
        self._secret, self._mask = self._text.encode(), self._mask_text.encode()

    def bytes(self, data: bytes) -> bytes:
        return data.replace(self._secret, self._mask) if self._secret and self._secret in data else data

    def text(self, text: str) -> str:
        return text.replace(self._text, self._mask_text) if self._text else text

    def response(self, response: HttpResponse) -> HttpResponse:
        headers = [(self.text(k), self.text(v)) for k, v in response.headers]
        return HttpResponse(response.status, headers, self.bytes(response.body))

    def prefix(self, body: bytes, limit: int, more: bool = False) -> bytes:
        """The first `limit` bytes of a scrubbed body; when that cuts it (or `more` of it was
        never read), without a secret begun at the cut."""
        head = body[:limit]
        return head[:len(head) - self.partial_at_end(head)] if more or len(body) > limit else head

    def failure(self, failure: TransportFailure) -> TransportFailure:
        return TransportFailure(failure.kind, self.text(failure.message))

    def partial_at_end(self, data: bytes) -> int:
        """How many bytes at the end of `data` are the secret's first ones (fewer than all)."""
        return next((n for n in range(min(len(self._secret) - 1, len(data)), 0, -1)
                     if data.endswith(self._secret[:n])), 0)


class ScrubStream:
    """`Scrub` over a body read in pieces: the bytes at a piece's end that could begin the secret
    are held back until the next piece says whether they do, so a secret split across two reads
    is caught whole."""

    def __init__(self, scrub: Scrub) -> None:
        self._scrub, self._held = scrub, b""

    def feed(self, data: bytes) -> bytes:
        data = self._scrub.bytes(self._held + data)
        keep = self._scrub.partial_at_end(data)
        self._held = data[len(data) - keep:] if keep else b""
        return data[:len(data) - keep]

    def flush(self) -> bytes:
        """What is held back, once the body has ended."""
        held, self._held = self._held, b""
        return held


def credential_env_vars(config: Mapping[str, Any]) -> dict[str, str]:
    """credential id -> environment variable, from `providers.*.credentials[]`.

    Tolerant of malformed configs: the guest validates them and names the bad field.
    """
    out: dict[str, str] = {}
    providers = config.get("providers")
    if not isinstance(providers, Mapping):
        return out
    for provider in providers.values():
        creds = provider.get("credentials") if isinstance(provider, Mapping) else None
        for cred in creds if isinstance(creds, list) else []:
            if isinstance(cred, Mapping) and isinstance(cred.get("id"), str):
                env = cred.get("env")
                out[cred["id"]] = env if isinstance(env, str) else default_env_var(cred["id"])
    return out


class Secrets:
    """The secrets this host has. Credentials without one are not reported (the guest says missing)."""

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, str] | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self._env_vars = credential_env_vars(config)
        self._given = dict(secrets) if secrets is not None else None
        self._environ = environ if environ is not None else os.environ

    def get(self, credential_id: str) -> str | None:
        if self._given is not None:
            value = self._given.get(credential_id)
        else:
            var = self._env_vars.get(credential_id, default_env_var(credential_id))
            value = self._environ.get(var)
        return value or None

    def infos(self) -> list[CredentialInfo]:
        # Only the config's ids: the guest would keep state for any other id it is told about.
        return [CredentialInfo(i, fingerprint(s)) for i in self._env_vars if (s := self.get(i)) is not None]
