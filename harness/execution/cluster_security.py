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
import ssl
from pathlib import Path
from typing import Any

from harness.errors import UsageError

TLS_FLAGS = {"ca_file": "--tls-ca-file", "cert": "--tls-cert", "key": "--tls-key"}
TLS_CONFIG = {"ca_file": "distributed.comm.tls.ca-file", "cert": "distributed.comm.tls.client.cert",
              "key": "distributed.comm.tls.client.key"}  # fmt: skip


#: protocols Dask encrypts (or that never leave this process); every other one is open to its network
SECURED = ("tls", "wss", "inproc")


def exposure_warning(scheduler: str | None) -> str | None:
    """What a scheduler address that is neither encrypted nor this machine's own exposes; None when it
    is secured (``SECURED``) or a loopback address. Names are not resolved: only ``localhost`` and literal
    loopback IPs count as local."""
    if not scheduler:
        return None
    protocol, _, rest = scheduler.rpartition("://") if "://" in scheduler else ("tcp", "", scheduler)
    if protocol.lower() in SECURED or _loopback(rest):
        return None
    return (f"warning: --scheduler {scheduler} is neither encrypted nor authenticated: anyone who can reach "
            "that port can send the cluster's workers code that they run as their user, and read the "
            "trials and results passing through it. Use tls:// with certificates (--tls-ca-file, --tls-cert, "
            "--tls-key; docs/cluster.md, 'Securing a cluster'), or keep the port reachable only from "
            "machines you trust.")  # fmt: skip


def _loopback(host_port: str) -> bool:
    """``localhost:8786``, ``127.0.0.1:8786``, ``[::1]:8786``: this machine's loopback."""
    host = host_port.rsplit(":", 1)[0] if not host_port.endswith("]") else host_port
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, or not an address at all: not known to be local
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
            raise UsageError(f"{_where(k, given)} {path}: no such file (a PEM file is expected)")
    _check_pem(chosen, given)
    return Security(tls_ca_file=chosen["ca_file"], tls_client_cert=chosen["cert"], tls_client_key=chosen["key"],
                    require_encryption=True)


def _where(key: str, given: dict[str, str]) -> str:
    return TLS_FLAGS[key] if key in given else TLS_CONFIG[key]


def _check_pem(chosen: dict[str, str], given: dict[str, str]) -> None:
    """Load the files as a TLS client would, so that a file that is not PEM, a key that does not match its
    certificate or an unreadable file is named now, not reported later as a scheduler that does not answer."""
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=chosen["ca_file"])
    except (ssl.SSLError, OSError) as e:
        raise UsageError(f"{_where('ca_file', given)} {chosen['ca_file']}: not a readable PEM certificate ({e})") from e
    try:
        context.load_cert_chain(chosen["cert"], chosen["key"])
    except (ssl.SSLError, OSError) as e:
        raise UsageError(f"{_where('cert', given)} {chosen['cert']} with {_where('key', given)} {chosen['key']}: "
                         f"not a readable PEM certificate and its private key ({e})") from e
