"""The hosted client's network (engine.generation.hosted_net): an endpoint a visitor types may not reach the
server's own loopback, private networks or cloud metadata, however the address is written or whatever a name
resolves to; the connection goes to the address checked (a second DNS answer cannot swap it); TLS verifies the
URL's host name on that address; the host's proxy applies only to endpoints that are not checked; and one deadline
covers the name lookup too. Every server here is started by the test on 127.0.0.1; other addresses are never
connected to (the connector is replaced where a test needs one)."""
from __future__ import annotations

import datetime
import ipaddress
import ssl
import socket
import threading

import pytest
from hosted_fake import KEY, MODEL, FakeServer

from engine.generation import hosted, hosted_net
from engine.generation.hosted import Endpoint

PUBLIC = "93.184.216.34"  # a public address: refused connections only (see `no_connect`), never reached


class Listener(FakeServer):
    """The fake OpenAI server, counting every TCP connection it accepts (a request or not)."""

    def __init__(self) -> None:
        self.connections = 0
        super().__init__()

    def verify_request(self, request, client_address) -> bool:
        self.connections += 1
        return True


@pytest.fixture(scope="module")
def server():
    s = Listener()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def fresh(server, monkeypatch):
    server.mode, server.requests, server.connections = "ok", [], 0
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def no_connect(monkeypatch):
    """Replace the connector: every attempt is recorded as (address, port) and refused, so nothing leaves."""
    tried: list[tuple[str, int]] = []

    def refuse(family, sockaddr, timeout):
        tried.append(sockaddr[:2])
        raise ConnectionRefusedError("refused by the test")

    monkeypatch.setattr(hosted_net, "connect_one", refuse)
    return tried


def answers(monkeypatch, *replies: list[str]) -> list[str]:
    """Make the resolver answer `replies` in turn (the last one from then on); returns the names looked up."""
    asked: list[str] = []

    def resolve(host, port):
        asked.append(host)
        reply = replies[min(len(asked), len(replies)) - 1]
        return [(socket.AF_INET6, (a, port, 0, 0)) if ":" in a else (socket.AF_INET, (a, port)) for a in reply]

    monkeypatch.setattr(hosted_net, "resolve", resolve)
    return asked


def ask(url: str, **kw):
    return hosted.complete(Endpoint(url, MODEL), KEY, "Hi", **{"timeout_s": 3, **kw})


def one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message and "\n" not in message


LOOPBACK = ["http://127.0.0.1:{port}/v1", "http://localhost:{port}/v1", "http://2130706433:{port}/v1",
            "http://0x7f.1:{port}/v1", "http://127.1:{port}/v1", "http://0177.0.0.1:{port}/v1",
            "http://017700000001:{port}/v1", "http://[::ffff:127.0.0.1]:{port}/v1", "http://[::1]:{port}/v1",
            "http://0.0.0.0:{port}/v1", "https://127.0.0.1:{port}/v1"]


@pytest.mark.parametrize("url", LOOPBACK)
def test_the_servers_own_addresses_are_refused_and_never_contacted(server, url) -> None:
    url = url.format(port=server.server_address[1])
    with pytest.raises(hosted.NotAllowed) as e:
        ask(url)
    message = str(e.value)
    assert one_sentence(message) and "GLASSBOX_HOSTED_ALLOW_PRIVATE=1" in message
    assert ("a loopback address" in message or "an unspecified address" in message), message
    assert server.connections == 0 and server.requests == []
    assert isinstance(e.value, hosted.InvalidEndpoint)  # the page shows it like any unusable endpoint


FORBIDDEN = [  # a URL's host, what the refusal calls it
    ("10.1.2.3", "a private network address"), ("172.16.5.4", "a private network address"),
    ("192.168.1.1", "a private network address"), ("100.64.0.1", "a private network address"),
    ("169.254.169.254", "a cloud metadata address"), ("[fd00:ec2::254]", "a cloud metadata address"),
    ("100.100.100.200", "a cloud metadata address"), ("169.254.1.1", "a link-local address"),
    ("[fe80::1]", "a link-local address"), ("[fc00::1]", "a unique-local address"),
    ("[fd12:3456::1]", "a unique-local address"), ("224.0.0.1", "a multicast address"),
    ("[ff02::1]", "a multicast address"), ("[::]", "an unspecified address"),
    ("240.0.0.1", "an address reserved for special use"), ("255.255.255.255", "an address reserved"),
    ("192.0.2.1", "an address reserved for special use"), ("0.1.2.3", "an address reserved for special use"),
    ("[::ffff:10.0.0.1]", "a private network address"), ("[::ffff:169.254.169.254]", "a cloud metadata address"),
    ("[2002:a9fe:a9fe::1]", "a cloud metadata address"),  # 6to4 around 169.254.169.254
    ("[64:ff9b::a9fe:a9fe]", "a cloud metadata address"),  # NAT64 around it
    ("[2001:db8::1]", "an address reserved for special use"),
]


@pytest.mark.parametrize("host, kind", FORBIDDEN, ids=[h for h, _ in FORBIDDEN])
def test_private_metadata_and_special_addresses_are_refused_before_connecting(no_connect, host, kind) -> None:
    with pytest.raises(hosted.NotAllowed) as e:
        ask(f"http://{host}/v1")
    assert f"http://{host} is {kind}" in str(e.value) and one_sentence(str(e.value))
    assert no_connect == []


def test_a_name_is_refused_if_any_address_it_resolves_to_is_private(monkeypatch, no_connect) -> None:
    answers(monkeypatch, [PUBLIC, "10.0.0.7"])
    with pytest.raises(hosted.NotAllowed, match=r"^http://api\.example\.test resolves to a private network"):
        ask("http://api.example.test/v1")
    answers(monkeypatch, ["169.254.169.254"])
    with pytest.raises(hosted.NotAllowed, match="resolves to a cloud metadata address"):
        ask("http://metadata.google.internal/v1")
    assert no_connect == []


def test_a_second_dns_answer_cannot_swap_the_checked_address(server, monkeypatch, no_connect) -> None:
    """DNS rebinding: the first answer is public, every later one the server's loopback. The name is looked up
    once and the connection goes to the public address checked, never to the listener."""
    asked = answers(monkeypatch, [PUBLIC], ["127.0.0.1"])
    port = server.server_address[1]
    with pytest.raises(hosted.Unreachable, match="Could not reach http://rebind.example.test"):
        ask(f"http://rebind.example.test:{port}/v1")
    assert asked == ["rebind.example.test"] and no_connect == [(PUBLIC, port)]
    assert server.connections == 0


def test_the_hosts_opt_in_reaches_a_local_server(server) -> None:
    port = server.server_address[1]
    for url in (f"http://127.0.0.1:{port}/v1", f"http://localhost:{port}/v1", f"http://2130706433:{port}/v1"):
        assert ask(url, allow_private=True).text == " She"
    assert len(server.requests) == 3 and server.requests[-1]["key"] == KEY


def test_one_deadline_covers_the_name_lookup(monkeypatch) -> None:
    """getaddrinfo has no timeout of its own: a slow name server must not hold the request past the deadline."""
    release = threading.Event()
    monkeypatch.setattr(hosted_net, "resolve", lambda host, port: release.wait(5) and [])
    try:
        with pytest.raises(hosted.TimedOut, match="did not answer within 0.3 seconds"):
            ask("http://slow-dns.example.test/v1", timeout_s=0.3)
    finally:
        release.set()


# --- proxies ----------------------------------------------------------------------------------------------------

def test_the_hosts_proxy_carries_unchecked_requests(server, monkeypatch) -> None:
    """The host's own endpoint goes through HTTP_PROXY as before: the proxy (the fake server here) gets the
    whole URL, and the name is not looked up here (the proxy does that)."""
    asked = []
    real = hosted_net.resolve
    monkeypatch.setattr(hosted_net, "resolve", lambda host, port: asked.append(host) or real(host, port))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    assert ask("http://api.example.test/v1", allow_private=True).text == " She"
    assert server.requests[-1]["path"] == "http://api.example.test/v1/chat/completions"
    assert asked == ["127.0.0.1"]


def test_a_typed_endpoint_never_goes_through_a_proxy(server, monkeypatch, no_connect) -> None:
    """A proxy would look the name up again, after the check: a checked request connects to its address."""
    answers(monkeypatch, [PUBLIC])
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    with pytest.raises(hosted.Unreachable):
        ask("http://api.example.test/v1")
    assert no_connect == [(PUBLIC, 80)] and server.connections == 0


# --- TLS on the pinned address --------------------------------------------------------------------------------

def _certificates(tmp_path):
    """A test authority and a certificate it signed for glassbox.test; returns (authority file, cert, key)."""
    x509 = pytest.importorskip("cryptography.x509", reason="the TLS test makes its certificates with cryptography")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject, issuer, key, signer, ca: bool, names=()):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                              content_commitment=False, key_encipherment=False,
                                              data_encipherment=False, key_agreement=False, encipher_only=False,
                                              decipher_only=False), critical=True)
        if names:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        return b.sign(signer, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Glassbox test authority")])
    ca = cert(ca_name, ca_name, ca_key, ca_key, True)
    leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "glassbox.test")]), ca_name, leaf_key, ca_key,
                False, ["glassbox.test"])
    pem = serialization.Encoding.PEM
    files = tmp_path / "ca.pem", tmp_path / "leaf.pem", tmp_path / "leaf.key"
    files[0].write_bytes(ca.public_bytes(pem))
    files[1].write_bytes(leaf.public_bytes(pem))
    files[2].write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return files


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    ca, leaf, key = _certificates(tmp_path)
    s = Listener()
    s.names = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(leaf, key)
    ctx.sni_callback = lambda sock, name, _: s.names.append(name)
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
    monkeypatch.setattr(hosted_net, "tls_context", lambda: ssl.create_default_context(cafile=str(ca)))
    yield s
    s.stop()


def test_tls_on_the_checked_address_still_verifies_the_urls_host_name(tls_server, monkeypatch) -> None:
    port = tls_server.server_address[1]
    answers(monkeypatch, ["127.0.0.1"])
    assert ask(f"https://glassbox.test:{port}/v1", allow_private=True).text == " She"
    assert tls_server.names == ["glassbox.test"]  # the SNI is the name, not the address connected to
    assert tls_server.requests[-1]["path"] == "/v1/chat/completions"
    with pytest.raises(hosted.Unreachable, match="certificate of https://other.test:.* could not be verified"):
        ask(f"https://other.test:{port}/v1", allow_private=True)  # the same address, a name the cert lacks
    assert len(tls_server.requests) == 1


def test_every_address_kind_is_classified_once() -> None:
    """`forbidden` on the edges: public addresses pass (IPv4 and IPv6), their neighbours do not."""
    for public in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "100.128.0.1", "172.32.0.1"):
        assert hosted_net.forbidden(ipaddress.ip_address(public)) is None, public
    for private in ("100.127.255.255", "172.31.255.255", "127.255.255.254", "::ffff:7f00:1"):
        assert hosted_net.forbidden(ipaddress.ip_address(private)) is not None, private
