"""Where the render services are: a fixed list (VOXCAST_RENDER_ADDRS) or Kubernetes EndpointSlices.

Both implementations share one interface: `start(on_change)` calls `on_change(addresses)` with the
current list at once and again whenever it changes; `stop()` ends the watch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from voxcast.config import Settings

OnChange = Callable[[list[str]], None]


class RenderDiscovery(Protocol):
    def start(self, on_change: OnChange) -> None: ...

    def stop(self) -> None: ...


class StaticRenderDiscovery:
    """The addresses given in the settings; they never change while the gateway runs."""

    def __init__(self, addresses: list[str]) -> None:
        if not addresses:
            raise ValueError("VOXCAST_RENDER_ADDRS lists no render service address")
        self.addresses = list(addresses)

    def start(self, on_change: OnChange) -> None:
        on_change(list(self.addresses))

    def stop(self) -> None:
        pass


def make_discovery(settings: Settings) -> RenderDiscovery:
    if settings.render_discovery == "kubernetes":
        # Imported only here: the kubernetes client is an optional extra (voxcast[k8s]).
        from voxcast.kube import KubernetesRenderDiscovery

        return KubernetesRenderDiscovery(settings)
    return StaticRenderDiscovery(settings.render_addr_list)
