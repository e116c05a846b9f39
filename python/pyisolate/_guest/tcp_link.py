"""The guest's end of the TCP+TLS transport: dial the host's listener, check its certificate's pin, send the token.

Two steps, split by confinement. ``dial_from_env()`` runs in bootstrap before Landlock and the seccomp filter: it
reads (and removes) PYISOLATE_CONNECT, PYISOLATE_PEER_SHA256 and PYISOLATE_TOKEN, makes the TLS context and opens the
TCP connection, so the sandbox need not allow a new connection at all. ``open_streams()`` then runs on the event
loop: the TLS handshake, the pin compared before a single byte of ours is sent (a token never reaches a server
that is not the host), and the preamble (magic + token), after which the connection carries frames as fd 3 does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import socket

CONNECT_ENV = "PYISOLATE_CONNECT"
PEER_SHA256_ENV = "PYISOLATE_PEER_SHA256"
TOKEN_ENV = "PYISOLATE_TOKEN"
HEARTBEAT_TOKEN_ENV = "PYISOLATE_HEARTBEAT_TOKEN"
MAGIC = b"PYI1"
TOKEN_BYTES = 32
_CONNECT_TIMEOUT_S = 30.0
_HANDSHAKE_TIMEOUT_S = 30.0
# SNI only (the pin is what is checked): a fixed name, so no host name of ours leaks.
_SERVER_NAME = "pyisolate-host"


class PinMismatch(ConnectionError):
    """The server's certificate is not the one the host named: the token was not sent."""


class Dial:
    def __init__(self, sock: socket.socket, context, pin: bytes, token: bytes, heartbeat=None) -> None:
        self.sock, self.context, self.pin, self.token = sock, context, pin, token
        self.heartbeat = heartbeat  # the heartbeat's own authenticated connection (a blocking SSL socket), if asked


def wanted() -> bool:
    return CONNECT_ENV in os.environ


def _split_address(address: str):
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"{CONNECT_ENV} must be host:port, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def dial_from_env() -> Dial:
    """Connect to the host (TCP only, no byte sent); raises ValueError for malformed variables, OSError if unreachable."""
    address = os.environ.pop(CONNECT_ENV)
    pin_hex = os.environ.pop(PEER_SHA256_ENV, "")
    token_hex = os.environ.pop(TOKEN_ENV, "")
    beat_hex = os.environ.pop(HEARTBEAT_TOKEN_ENV, None)
    try:
        pin, token = bytes.fromhex(pin_hex), bytes.fromhex(token_hex)
        beat = None if beat_hex is None else bytes.fromhex(beat_hex)
    except ValueError:
        raise ValueError(f"{PEER_SHA256_ENV} and the tokens must be hex") from None
    if len(pin) != 32 or len(token) != TOKEN_BYTES or (beat is not None and len(beat) != TOKEN_BYTES):
        raise ValueError(f"{PEER_SHA256_ENV} must be 32 bytes and each token {TOKEN_BYTES} bytes, in hex")
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    # No CA and no host name: the host's certificate is self-signed and pinned by its SHA-256 (checked in open_streams).
    # TLS still proves the server holds the certificate's key (its CertificateVerify signature).
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    heartbeat = None if beat is None else _dial_heartbeat(context, _split_address(address), pin, beat)
    sock = socket.create_connection(_split_address(address), timeout=_CONNECT_TIMEOUT_S)
    sock.setblocking(False)
    # Frames are written whole: Nagle's wait for an ACK would only delay a small call's reply.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Dial(sock, context, pin, token, heartbeat)


def _dial_heartbeat(context, address, pin: bytes, token: bytes):
    """The heartbeat's connection, made whole here (TLS, pin, token) and blocking: a thread answers on it, outside
    the event loop, as it does on fd 5 (heartbeat.py)."""
    raw = socket.create_connection(address, timeout=_CONNECT_TIMEOUT_S)
    try:
        tls = context.wrap_socket(raw, server_hostname=_SERVER_NAME)
    except BaseException:
        raw.close()
        raise
    der = tls.getpeercert(binary_form=True) or b""
    if not hmac.compare_digest(hashlib.sha256(der).digest(), pin):
        tls.close()
        raise PinMismatch(
            f"the server's certificate (sha256 {hashlib.sha256(der).hexdigest()}) is not the host's: "
            f"the token was not sent"
        )
    tls.settimeout(None)
    tls.sendall(MAGIC + token)
    return tls


async def open_streams(dial: Dial):
    """TLS over the dialled socket, the pin checked, the token sent: (reader, writer) for the peer."""
    reader, writer = await asyncio.open_connection(
        sock=dial.sock, ssl=dial.context, server_hostname=_SERVER_NAME, ssl_handshake_timeout=_HANDSHAKE_TIMEOUT_S
    )
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True) or b""
    if not hmac.compare_digest(hashlib.sha256(der).digest(), dial.pin):
        writer.transport.abort()
        raise PinMismatch(
            f"the server's certificate (sha256 {hashlib.sha256(der).hexdigest()}) is not the host's: "
            f"the token was not sent"
        )
    writer.write(MAGIC + dial.token)
    dial.token = b""
    return reader, writer
