"""Where a webhook may point: public http(s) hosts only, checked when it is saved and again when it is called.

A webhook is a URL a writer chooses and sagewatch calls from inside the user's account, so it must
not reach what only that account can: the instance metadata service (169.254.169.254), the Lambda
runtime API and other loopback services, or private networks. A URL is refused when its host is
`localhost`, or an address (given, or resolved at call time) that is not globally routable:
loopback, link-local, private (RFC 1918, unique-local IPv6), shared, reserved, multicast or
unspecified. Resolving again at call time catches a name that points somewhere private; redirects
are not followed, so a public host cannot bounce the call inward.

Teams whose alert router lives on a private network set SAGEWATCH_WEBHOOK_PRIVATE_NETWORKS=allow,
which admits private and loopback addresses (`sagewatch local` sets it: the laptop is the user's
own); link-local addresses, the metadata service among them, stay refused even then.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import unicodedata
from urllib.parse import urlsplit

from sagewatch.errors import InvalidInput

ALLOW_PRIVATE_ENV = "SAGEWATCH_WEBHOOK_PRIVATE_NETWORKS"


class WebhookRefused(ValueError):
    """The URL may not be called; the message says why."""


def private_networks_allowed() -> bool:
    """Whether SAGEWATCH_WEBHOOK_PRIVATE_NETWORKS=allow admits private and loopback addresses."""
    return os.environ.get(ALLOW_PRIVATE_ENV, "").lower() == "allow"


def check_destination(url: str, field: str) -> None:
    """check_url for a URL a request gives: refused as a 400 naming `field`."""
    try:
        check_url(url)
    except WebhookRefused as refused:
        raise InvalidInput(f"{field} refused: {refused}", field=field) from None


def check_url(url: str, allow_private: bool | None = None) -> str:
    """The URL's host when the URL may be saved; WebhookRefused naming the reason otherwise."""
    allow_private = private_networks_allowed() if allow_private is None else allow_private
    if re.search(r"[\s\x00-\x1f\x7f-\x9f]", url):  # urlsplit drops tabs and newlines silently
        raise WebhookRefused("a URL has no spaces or control characters (percent-encode them)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise WebhookRefused(f"not a URL ({error})") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookRefused("a webhook is an http:// or https:// URL")
    host = unicodedata.normalize("NFKC", parts.hostname or "").rstrip(".").lower()  # full-width digits
    if not host:
        raise WebhookRefused("the URL has no host")
    if parts.username or parts.password:
        raise WebhookRefused("credentials in the URL are not accepted: put a token in its path or query")
    if port == 0:
        raise WebhookRefused("port 0 is not a port")
    if (host == "localhost" or host.endswith(".localhost")) and not allow_private:
        raise WebhookRefused(f"{host} is this machine, not a public host")
    address = numeric_address(host)
    if address is None:
        return host  # a name: checked again, resolved, when called
    check_address(address, allow_private)
    return host


def numeric_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names by number, in any form a resolver accepts (`2852039166`,
    `0xA9FEA9FE`, `0251.0376.0251.0376`, `169.254.43518` all name 169.254.169.254), else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


_LEGACY_IPV4 = re.compile(r"[0-9a-fx.]+")
# IPv6 ranges that carry an IPv4 address (IPv4-compatible, IPv4-translated, NAT64, 6to4, Teredo):
# the IPv4 address inside could be anything, so they are refused outright.
_EMBEDDING = [
    ipaddress.ip_network(n)
    for n in (
        "::/96",
        "::ffff:0:0/96",
        "::ffff:0:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2002::/16",
        "2001::/32",
    )
]


def check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool) -> None:
    """Refuse an address that is not public (see the module docstring)."""
    if address.is_link_local or address.is_unspecified or address.is_multicast:
        raise WebhookRefused(f"{address} is a link-local, multicast or unspecified address")
    embeds = address.version == 6 and any(address in network for network in _EMBEDDING)
    if embeds and not address.is_loopback:
        raise WebhookRefused(f"{address} embeds an IPv4 address; give the IPv4 address or a host name")
    if not address.is_global and not (allow_private and (address.is_private or address.is_loopback)):
        raise WebhookRefused(
            f"{address} is not a public address (set {ALLOW_PRIVATE_ENV}=allow to call private networks)"
        )


def check_resolved(url: str) -> None:
    """At call time: the URL is acceptable and every address its host resolves to is public."""
    allow_private = private_networks_allowed()
    host = check_url(url, allow_private)
    port = urlsplit(url).port or (443 if url.lower().startswith("https") else 80)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as error:
        raise WebhookRefused(f"{host} does not resolve ({error})") from None
    for info in infos:
        check_address(ipaddress.ip_address(info[4][0].split("%")[0]), allow_private)
