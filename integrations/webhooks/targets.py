"""Where a webhook may be sent: HTTPS to a public address (no SSRF into the machine or
its network). The URL's host is resolved and every address checked, when the
subscription is saved and again at each send (DNS may have changed since); the send
then connects to the address it checked, not to a second lookup's answer.

`WEBHOOKS_ALLOW_PRIVATE_TARGETS` (env, default off) allows private and loopback
addresses and plain http, for a receiver on the same machine or network (tests, a
local integration)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to `ip`, name `host` (Host header, TLS name)."""

    scheme: str
    host: str
    port: int
    path: str
    ip: str


def private_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_TARGETS", False))


def is_public(address: Address) -> bool:
    """Not private, loopback, link-local (cloud metadata), multicast, reserved or
    unspecified; an IPv4-mapped IPv6 address is judged as its IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _split(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if private_allowed() else ("https",)
    if scheme not in allowed:
        raise ValidationError(_("Use an https:// address."), code="scheme")
    if parts.username or parts.password:
        raise ValidationError(_("Leave the user name and password out of the address."))
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise ValidationError(_("The address has an invalid port."), code="port") from None
    host = parts.hostname or ""
    if not host:
        raise ValidationError(_("The address has no host name."), code="host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, path


def resolve(host: str, port: int) -> list[Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    found: list[Address] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def check(url: str) -> Target:
    """The URL as a checked target, or a ValidationError in the user's language."""
    scheme, host, port, path = _split(url)
    addresses = resolve(host, port)
    if not addresses:
        raise ValidationError(
            _("The host name %(host)s could not be found.") % {"host": host}, code="dns"
        )
    if not private_allowed():
        # Every address the name has, not just the first: a name with a public and a
        # private address could be answered either way next time.
        refused = [a for a in addresses if not is_public(a)]
        if refused:
            raise ValidationError(
                _(
                    "%(host)s points to %(address)s, an internal address; webhooks only "
                    "go to public addresses."
                )
                % {"host": host, "address": refused[0]},
                code="private",
            )
    return Target(scheme=scheme, host=host, port=port, path=path, ip=str(addresses[0]))
