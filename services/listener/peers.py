"""Who may send us studies: calling AE titles, each from given addresses or networks.

Checked twice. At TCP accept, an address no entry names is disconnected before a byte is read (no thread,
no buffer for a stranger). At the association request, the calling AE title must be allowed from that
address: the AE title alone proves nothing (any peer can claim "PACS"), the address alone does not say
which application is calling.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

ANY_AE = "*"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Peer:
    ae_title: str
    network: Network


class PeerPolicy:
    def __init__(self, peers: Iterable[Peer]) -> None:
        self.peers = tuple(peers)

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> "PeerPolicy":
        """Entries as in the settings: `CALLING_AE@address-or-network` (`*` for any AE title)."""
        peers = []
        for entry in entries:
            ae_title, at, network = entry.rpartition("@")
            if not at or not ae_title:
                raise ValueError(f"peer: expected CALLING_AE@network, found {entry!r}")
            peers.append(Peer(ae_title.strip(), ipaddress.ip_network(network, strict=False)))
        return cls(peers)

    def address_allowed(self, address: str) -> bool:
        ip = _parse(address)
        return ip is not None and any(_contains(peer.network, ip) for peer in self.peers)

    def association_allowed(self, calling_ae_title: str, address: str) -> bool:
        ip = _parse(address)
        if ip is None:
            return False
        title = calling_ae_title.strip()
        return any(peer.ae_title in (ANY_AE, title) and _contains(peer.network, ip) for peer in self.peers)


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    # An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d; the allow-list names it as IPv4.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _contains(network: Network, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.version == network.version and ip in network
