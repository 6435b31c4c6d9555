"""Which network addresses the gateway may send a model request to.

Always refused: link-local addresses (169.254.0.0/16, fe80::/10) and the
cloud metadata services (169.254.169.254; fd00:ec2::254 on AWS;
100.100.100.200 on Alibaba Cloud; metadata.google.internal). A model whose
URL pointed there would send the gateway's requests, and show the answers,
to the service that hands out the machine's cloud credentials. Loopback and
private addresses stay allowed (self-hosted models live there) unless
LLM_ALLOW_PRIVATE_UPSTREAMS is off.

Checked twice: when a model is saved (`check_url`, the base URL's host and
what it resolves to now) and whenever the gateway opens a connection
(`addresses_to_connect`, in http.py), on the very addresses it connects to,
so a name that later resolves somewhere else (DNS rebinding) is refused too.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog"})
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
# IPv6 forms that carry an IPv4 address: the well-known NAT64 prefix.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
DOES_NOT_CALL = "the gateway does not send requests there."


class Refused(ValueError):
    """An address the gateway must not call; the message says why, for a person."""


def _embedded_ipv4(ip):
    if ip.version != 6:
        return None
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def reason(ip):
    """Why the gateway must not connect to this address (an ip_address), or None when it may."""
    for candidate in filter(None, (ip, _embedded_ipv4(ip))):
        if candidate in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if candidate.is_link_local:
            return "a link-local address"
    if not settings.LLM_ALLOW_PRIVATE_UPSTREAMS and not ip.is_global:
        return "a private or loopback address (LLM_ALLOW_PRIVATE_UPSTREAMS is off)"
    return None


def _literal(host):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _resolve(host, port):
    """The addresses a host name resolves to, in the resolver's order (raises OSError)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = []
    for info in infos:
        address = info[4][0]
        if address not in addresses:
            addresses.append(address)
    return addresses


def _refuse_name(host):
    if host.lower().rstrip(".") in METADATA_HOSTS:
        raise Refused(f"{host} is a cloud metadata service; {DOES_NOT_CALL}")


def check_address(host, address):
    """Raise Refused when the gateway must not connect to `address` (what `host` resolved to)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    why = reason(ip)
    if why is None:
        return
    if _literal(host) is not None:
        raise Refused(f"{host} is {why}; {DOES_NOT_CALL}")
    raise Refused(f"{host} resolves to {ip}, {why}; {DOES_NOT_CALL}")


def check_url(url):
    """When a model is saved: raise Refused if the URL's host is, or now resolves to, a refused address.

    A name that does not resolve (yet) is accepted; the connection is checked again.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    _refuse_name(host)
    if _literal(host) is not None:
        check_address(host, host)
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = _resolve(host, port)
    except (OSError, UnicodeError, ValueError):
        return
    for address in addresses:
        check_address(host, address)


def addresses_to_connect(host, port):
    """When connecting: the addresses of `host` to try, each one allowed; raises Refused or OSError."""
    _refuse_name(host)
    addresses = [host] if _literal(host) is not None else _resolve(host, port)
    for address in addresses:
        check_address(host, address)
    return addresses
