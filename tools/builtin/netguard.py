"""Which addresses an agent may fetch from.

A model that can be steered by a web page or a document must not reach the machine
it runs on (loopback), the local network (private ranges) or cloud metadata services
(link-local 169.254.169.254). A host name is resolved and *every* address it resolves
to is checked, so a name with one public and one private address is refused; the
request then goes to a checked address, so a second lookup cannot swap it
(DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from tools.errors import ToolExecutionError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def address_class(ip: IPAddress) -> str | None:
    """Why `ip` is not a public address ("loopback", "private", ...), or None if it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:  # an IPv4 address in IPv6 clothing is judged as IPv4
            return address_class(embedded)
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-public"
    return None


@dataclass(frozen=True)
class NetworkPolicy:
    """What may be fetched besides public addresses."""

    allow_loopback: bool = False
    allow_private_network: bool = False  # every non-public address, loopback included
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default_factory=tuple
    )

    @classmethod
    def create(
        cls,
        *,
        allow_loopback: bool = False,
        allow_private_network: bool = False,
        allowed_networks: Iterable[str] = (),
    ) -> NetworkPolicy:
        nets = tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks)
        return cls(allow_loopback, allow_private_network, nets)

    def refusal(self, address: str) -> str | None:
        """The class of a refused address ("loopback", "private", ...), or None."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
        kind = address_class(ip)
        if kind is None or self.allow_private_network:
            return None
        if kind == "loopback" and self.allow_loopback:
            return None
        if any(ip in net for net in self.allowed_networks if net.version == ip.version):
            return None
        return kind


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the system resolver, without blocking the loop)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ToolExecutionError(f"cannot resolve host '{host}': {exc.strerror}") from None
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(str(sockaddr[0]))
    return addresses


async def checked_addresses(
    host: str, port: int, policy: NetworkPolicy, resolver: Resolver = system_resolver
) -> list[str]:
    """The addresses of `host`, all allowed by `policy`; ToolExecutionError otherwise."""
    try:
        addresses = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        addresses = await resolver(host, port)
    if not addresses:
        raise ToolExecutionError(f"host '{host}' has no address")
    for address in addresses:
        kind = policy.refusal(address)
        if kind is not None:
            subject = address if host.strip("[]") == address else f"'{host}' (at {address})"
            raise ToolExecutionError(
                f"refused: {subject} is not a public address ({kind}); private, loopback "
                "and link-local addresses are only fetched when explicitly allowed"
            )
    return addresses
