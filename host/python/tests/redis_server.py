"""A throwaway redis-server on a free 127.0.0.1 port for the store tests: plain, or TLS-only with
an ACL user (certificates generated with openssl), with `kill`/`restart` for outages."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ACL_USER, ACL_PASSWORD = "fleet", "s3cret-fleet"
# What a store needs, and only on its own keys: the README's ACL line, shared by every host's tests.
ACL_RULES = ["on", f">{ACL_PASSWORD}",
             *(Path(__file__).resolve().parents[3] / "tests/fleet/redis-acl.txt").read_text().split()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _certificates(where: Path) -> tuple[Path, Path, Path]:
    """(CA, server certificate, server key): a CA made here and a certificate for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the TLS test certificates")
    where.mkdir(parents=True, exist_ok=True)
    ca, ca_key, cert, key, csr = (where / n for n in ("ca.pem", "ca.key", "server.pem", "server.key", "server.csr"))
    ext = where / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    for cmd in (["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
                 "-subj", "/CN=failover-policy test CA"],
                ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
                ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
                 "-days", "2", "-extfile", ext]):
        subprocess.run(["openssl", *map(str, cmd)], check=True, capture_output=True)
    return ca, cert, key


class RedisServer:
    """A redis-server on a free 127.0.0.1 port. `url` is the plain URL; with `tls_dir`, it speaks
    TLS only, `url` is `rediss://` with the ACL user's credentials and `ca_file` the CA to trust."""

    def __init__(self, tls_dir: Path | None = None) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed: scripts/setup.sh installs it (Debian's redis-server)")
        self.port = _free_port()
        self._args = ["redis-server", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
        self.ca_file: str | None = None
        if tls_dir is None:
            self._args += ["--port", str(self.port)]
            self.url = f"redis://127.0.0.1:{self.port}/0"
        else:
            ca, cert, key = _certificates(tls_dir)
            self.ca_file = str(ca)
            self._args += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                           "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
                           "--user", "default", "off", "--user", ACL_USER, *ACL_RULES]
            self.url = f"rediss://{ACL_USER}:{ACL_PASSWORD}@127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None
        self.restart()

    def restart(self) -> None:
        self._proc = subprocess.Popen(self._args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not listen on 127.0.0.1:{self.port} within 5 s") from exc
                time.sleep(0.01)

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
