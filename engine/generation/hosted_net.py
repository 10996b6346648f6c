"""The network half of the hosted client (engine.generation.hosted): where a request may go, and how long it may
take. Standard library only.

Where. A request to an endpoint a visitor typed (`public_only`) goes to public addresses only: the host name is
looked up once (`resolve`), every address it resolves to is checked (`forbidden`: loopback, private and shared,
link-local, unique-local, multicast, unspecified, reserved and cloud-metadata addresses, and IPv4 addresses
inside IPv6 ones), and the connection is made to a checked address, so a second DNS answer cannot swap in
another one (DNS rebinding). TLS still verifies the certificate against the URL's host name, which is also the
SNI and the Host header. Such a request goes through no proxy: the proxy would look the name up again. The
host's own endpoint is not checked (nor any endpoint when the host allows private addresses), and HTTP_PROXY,
HTTPS_PROXY and NO_PROXY from the environment apply to it, as before.

How long. One deadline covers the whole request: the name lookup, connecting, the TLS handshake, sending, the
status line and headers, and the body. Every socket operation waits at most the time left, so a server that
drips its headers a byte at a time is cut off at the deadline (a timeout per read would wait for each byte
anew). No redirect is followed (http.client follows none).

Every failure is a HostedError whose message is one plain sentence naming only scheme://host:port.
"""
from __future__ import annotations

import base64
import http.client
import io
import ipaddress
import logging
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from typing import Union

from .hosted_api import HostedError, NotAllowed, TimedOut, TooLarge, Unreachable

LOG = logging.getLogger("glassbox.hosted")

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
ERROR_BYTES = 64_000  # of an error's body: read only to tell what the server refused, never shown

# Instance metadata services: AWS, GCP and Azure (169.254.169.254), AWS ECS (169.254.170.2), AWS over IPv6,
# Alibaba, Oracle. Most are link-local or shared anyway; named so the message says what they are.
METADATA = {ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254",
                                              "100.100.100.200", "192.0.0.192")}
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                   "100.64.0.0/10"))  # RFC 1918, and carrier-grade NAT's
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _inside(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries to: IPv4-mapped, 6to4, Teredo and NAT64."""
    out = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo:
        out.extend(ip.teredo)
    if any(ip in net for net in _NAT64):
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def forbidden(ip: Address) -> str | None:
    """What kind of address `ip` is ("a loopback address") when an endpoint a visitor typed may not reach it;
    None for a public address."""
    if ip in METADATA:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d
            return forbidden(ip.ipv4_mapped)
        for inner in _inside(ip):
            if (why := forbidden(inner)) is not None:
                return why
    for test, kind in (("is_loopback", "a loopback address"), ("is_unspecified", "an unspecified address"),
                       ("is_link_local", "a link-local address"), ("is_multicast", "a multicast address")):
        if getattr(ip, test):
            return kind
    if ip.version == 6 and ip in _UNIQUE_LOCAL:
        return "a unique-local address"
    if ip.version == 4 and any(ip in net for net in _PRIVATE):
        return "a private network address"
    if ip.is_private or ip.is_reserved or not ip.is_global:  # "this network", documentation, benchmarking...
        return "an address reserved for special use"
    return None


def resolve(host: str, port: int) -> list[tuple[int, tuple]]:
    """Every (address family, socket address) `host` resolves to for TCP: the one lookup a request makes."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys((family, sockaddr) for family, _, _, _, sockaddr in infos))


def tls_context() -> ssl.SSLContext:
    """Certificates verified against the system's authorities and the URL's host name."""
    return ssl.create_default_context()


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("past the deadline")
    return left


def _lookup(host: str, port: int, deadline: float) -> list[tuple[int, tuple]]:
    """`resolve`, by the deadline: getaddrinfo has no timeout, so it runs in a thread of its own (which ends
    when the system's resolver gives up)."""
    box: dict = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["ok"] = resolve(host, port)
        except Exception as e:  # OSError, or UnicodeError for a label over 63 characters: the name does not resolve
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=run, name="glassbox-hosted-dns", daemon=True).start()
    if not done.wait(_left(deadline)):
        raise TimeoutError("the name lookup took too long")
    if "ok" not in box:
        raise OSError("the name does not resolve") from None
    return box["ok"]


def _check(where: str, host: str, addresses: list[tuple[int, tuple]]) -> None:
    """NotAllowed unless every address is public: one private answer among public ones refuses them all."""
    for _, sockaddr in addresses:
        kind = forbidden(ipaddress.ip_address(sockaddr[0].split("%")[0]))
        if kind is not None:
            literal = _is_literal(host)
            raise NotAllowed(f"{where} {'is' if literal else 'resolves to'} {kind}, and an endpoint typed on this "
                             "page may reach only public addresses (the host of this app can allow a local "
                             "server with GLASSBOX_HOSTED_ALLOW_PRIVATE=1).")


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
        return True
    except ValueError:
        return False


def connect_one(family: int, sockaddr: tuple, timeout: float) -> socket.socket:
    """A TCP connection to exactly this address (never a name: nothing is looked up again)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


def _connect(addresses: list[tuple[int, tuple]], deadline: float) -> socket.socket:
    error: OSError = OSError("no address")
    for family, sockaddr in addresses:  # in the resolver's order, as socket.create_connection tries them
        try:
            return connect_one(family, sockaddr, _left(deadline))
        except TimeoutError:
            raise
        except OSError as e:
            error = e
    raise error


class _Deadline:
    """A connected socket whose every operation waits at most the time left before `deadline`: what http.client
    is handed, so its reads of the status line, headers and body all end by the deadline. Like a socket, it
    closes once it is closed and no file made from it is open (http.client closes the connection and keeps
    reading the response)."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock, self.deadline = sock, deadline
        self._files, self._closing = 0, False

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # send() by send(): SSLSocket.sendall would give each piece a full timeout
            self.sock.settimeout(_left(self.deadline))
            view = view[self.sock.send(view):]

    def recv_into(self, buffer, nbytes: int = 0) -> int:
        self.sock.settimeout(_left(self.deadline))
        return self.sock.recv_into(buffer, nbytes)

    def makefile(self, mode: str = "rb", *args, **kwargs) -> io.BufferedReader:
        self._files += 1
        return io.BufferedReader(_Reader(self))

    def close(self, file: bool = False) -> None:
        self._files -= file
        self._closing = self._closing or not file
        if self._closing and self._files <= 0:
            self.sock.close()


class _Reader(io.RawIOBase):
    def __init__(self, sock: _Deadline):
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._sock.close(file=True)
        super().close()


def _proxy(scheme: str, host: str) -> urllib.parse.SplitResult | None:
    """The proxy the environment names for this URL (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), or None."""
    url = urllib.request.getproxies_environment().get(scheme)
    if not url or urllib.request.proxy_bypass_environment(host):
        return None
    parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    return parts if parts.hostname else None


def _proxy_auth(proxy: urllib.parse.SplitResult | None) -> dict[str, str]:
    if proxy is None or proxy.username is None:
        return {}
    user = urllib.parse.unquote(proxy.username) + ":" + urllib.parse.unquote(proxy.password or "")
    return {"Proxy-Authorization": "Basic " + base64.b64encode(user.encode()).decode()}


def _tunnel(sock: _Deadline, host: str, port: int, auth: dict[str, str]) -> None:
    """CONNECT host:port through the proxy `sock` is connected to."""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": target, **auth}.items())
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\n{head}\r\n".encode("ascii"))
    resp = http.client.HTTPResponse(sock, method="CONNECT")  # type: ignore[arg-type] - reads by the deadline
    try:
        resp.begin()  # the status line and headers only: nothing follows them until TLS starts
    finally:
        resp.close()
    if resp.status != 200:
        raise OSError(f"the proxy answered HTTP {resp.status} to CONNECT")


def _open(host: str, port: int, tls: bool, proxy, public_only: bool, where: str, deadline: float) -> _Deadline:
    """A socket ready for the request: TCP to a checked address (or through the host's proxy), then TLS."""
    if proxy is not None:
        sock = _Deadline(_connect(_lookup(proxy.hostname, proxy.port or 80, deadline), deadline), deadline)
    else:
        addresses = _lookup(host, port, deadline)
        if public_only:
            _check(where, host, addresses)
        sock = _Deadline(_connect(addresses, deadline), deadline)
    try:
        if proxy is not None and tls:
            _tunnel(sock, host, port, _proxy_auth(proxy))
        if tls:
            sock.sock.settimeout(_left(deadline))  # the handshake waits at most this long in all
            sock.sock = tls_context().wrap_socket(sock.sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise
    return sock


def _read(resp: http.client.HTTPResponse, max_bytes: int) -> bytes:
    """The body, at most max_bytes (TooLarge past it); every read ends by the socket's deadline."""
    length = resp.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise TooLarge(f"The server's answer is larger than {max_bytes:,} bytes; Glassbox does not read it.")
    chunks, total = [], 0
    while chunk := resp.read1(65_536):
        total += len(chunk)
        if total > max_bytes:
            raise TooLarge(f"The server's answer is larger than {max_bytes:,} bytes; Glassbox stopped reading.")
        chunks.append(chunk)
    return b"".join(chunks)


def timed_out(where: str, timeout_s: float) -> TimedOut:
    LOG.warning("Glassbox: hosted model at %s timed out after %gs", where, timeout_s)
    return TimedOut(f"{where} did not answer within {timeout_s:g} seconds; try again, or a smaller model.")


def post(url: str, headers: dict[str, str], data: bytes, *, where: str, timeout_s: float, public_only: bool,
         max_bytes: int) -> tuple[int, bytes]:
    """POST `data` to `url` and return (status, body), all within `timeout_s`. A success's body is read up to
    `max_bytes` (TooLarge past it); a failure's up to ERROR_BYTES (b"" when it is longer or late), to be read
    only for what the server refused. `where` (scheme://host:port) is what messages name. Raises NotAllowed,
    Unreachable, TimedOut or TooLarge."""
    deadline = time.monotonic() + timeout_s
    parts = urllib.parse.urlsplit(url)
    host, tls = parts.hostname or "", parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    proxy = None if public_only else _proxy(parts.scheme, host)
    sent, resp = False, None
    conn = http.client.HTTPConnection(host, port)
    try:
        conn.sock = _open(host, port, tls, proxy, public_only, where, deadline)  # type: ignore[assignment]
        named = f"[{host}]" if ":" in host else host
        headers = {**headers, "Host": named if port == (443 if tls else 80) else f"{named}:{port}",
                   "Connection": "close"}
        if proxy is not None and not tls:  # a plain-HTTP proxy takes the whole URL
            target, headers = url, {**headers, **_proxy_auth(proxy)}
        else:
            target = parts.path or "/"
        sent = True
        conn.request("POST", target, body=data, headers=headers)
        resp = conn.getresponse()
        if 200 <= resp.status < 300:
            return resp.status, _read(resp, max_bytes)
        try:
            return resp.status, _read(resp, ERROR_BYTES)
        except (HostedError, OSError, http.client.HTTPException):
            return resp.status, b""
    except HostedError:
        raise
    except TimeoutError:
        raise timed_out(where, timeout_s) from None
    except ssl.SSLCertVerificationError:
        LOG.warning("Glassbox: hosted model at %s has a certificate that could not be verified", where)
        raise Unreachable(f"The certificate of {where} could not be verified (self-signed, expired, or for "
                          "another name), and Glassbox sends requests only over verified connections.") from None
    except (http.client.HTTPException, OSError) as e:
        LOG.warning("Glassbox: hosted model at %s: %s", where, type(e).__name__)
        if sent:  # the connection broke half way
            raise Unreachable(f"The connection to {where} broke before the answer was complete.") from None
        raise Unreachable(f"Could not reach {where}: nothing answers there, the name does not resolve, "
                          "or this server has no network.") from None
    finally:
        conn.close()
        if resp is not None:
            resp.close()  # and with it the socket
