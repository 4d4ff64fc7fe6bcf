"""Who may use the cluster a run submits to: TLS for ``--scheduler tls://``, a warning for plain ``tcp://``.

A Dask scheduler accepts pickled functions from any client that reaches its port, and its workers run
them as their own user. A plain ``tcp://`` scheduler on a network address is therefore open to anyone on
that network: no encryption, no authentication. Dask's remedy is mutual TLS: the scheduler, its workers
and each client hold a certificate signed by one certificate authority, and each refuses a peer
without one. rnn-bench's side of it (docs/cluster.md, "Securing a cluster"):

* ``--scheduler tls://HOST:PORT`` with ``--tls-ca-file``, ``--tls-cert`` and ``--tls-key`` (PEM files; the
  key may be inside the certificate file), or, without those flags, Dask's own configuration
  (``distributed.comm.tls.ca-file``, ``distributed.comm.tls.client.cert`` / ``.key``); the files are
  checked before any work, and the connection requires encryption.
* ``--scheduler tcp://`` (or no protocol) to an address that is not this machine's loopback: a warning
  that says what it exposes, and how to secure it.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import UsageError

TLS_FLAGS = {"ca_file": "--tls-ca-file", "cert": "--tls-cert", "key": "--tls-key"}
TLS_CONFIG = {"ca_file": "distributed.comm.tls.ca-file", "cert": "distributed.comm.tls.client.cert",
              "key": "distributed.comm.tls.client.key"}  # fmt: skip


def exposure_warning(scheduler: str | None) -> str | None:
    """What a plain ``tcp://`` scheduler on a non-loopback address exposes; None when it is secured or local."""
    if not scheduler or "://" in scheduler and not scheduler.startswith("tcp://"):
        return None
    host = urlsplit(scheduler if "://" in scheduler else f"tcp://{scheduler}").hostname or ""
    if _loopback(host):
        return None
    return (f"warning: --scheduler {scheduler} is neither encrypted nor authenticated: anyone who can reach "
            "that port can send the cluster's workers code that they run as their user, and read the "
            "trials and results passing through it. Use tls:// with certificates (--tls-ca-file, --tls-cert, "
            "--tls-key; docs/cluster.md, 'Securing a cluster'), or keep the port reachable only from "
            "machines you trust.")  # fmt: skip


def _loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: what it resolves to
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


def tls_security(scheduler: str | None, files: dict[str, str]) -> Any:
    """The ``distributed.Security`` a ``tls://`` scheduler needs, from ``files`` (``TLS_FLAGS``' keys, the
    flags given) or Dask's configuration; None for another scheduler. ``UsageError`` naming what is missing
    or unreadable, and for TLS flags without a ``tls://`` scheduler."""
    given = {k: v for k, v in files.items() if v}
    if not (scheduler or "").startswith("tls://"):
        if given:
            flags, verb = ", ".join(TLS_FLAGS[k] for k in given), "applies" if len(given) == 1 else "apply"
            raise UsageError(f"{flags} {verb} to --scheduler tls://HOST:PORT, not {scheduler or 'a run without one'}")
        return None
    import dask
    from distributed import Security

    chosen = {k: given.get(k) or dask.config.get(TLS_CONFIG[k], None) for k in TLS_FLAGS}
    if not chosen["key"] and chosen["cert"]:
        chosen["key"] = chosen["cert"]  # a PEM file may hold both
    missing = [k for k in ("ca_file", "cert") if not chosen[k]]
    if missing:
        flags, keys = " and ".join(TLS_FLAGS[k] for k in missing), ", ".join(TLS_CONFIG[k] for k in missing)
        raise UsageError(f"--scheduler {scheduler} needs certificates: give {flags} (or set {keys} in Dask's "
                         "configuration); docs/cluster.md, 'Securing a cluster'")  # fmt: skip
    for k, path in chosen.items():
        if not Path(path).is_file():
            where = TLS_FLAGS[k] if k in given else TLS_CONFIG[k]
            raise UsageError(f"{where} {path}: no such file (a PEM file is expected)")
    return Security(tls_ca_file=chosen["ca_file"], tls_client_cert=chosen["cert"], tls_client_key=chosen["key"],
                    require_encryption=True)
