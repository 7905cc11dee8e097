"""A Kubernetes API server stand-in for the few resources voxcast uses, over real HTTP.

It speaks the API's wire format (JSON objects with kind/apiVersion/metadata, List responses with a
resourceVersion, chunked `?watch=true` streams of {"type", "object"} events, 410 Gone for expired
versions, merge patches on the scale subresource and HPAs, bearer-token auth, the pod proxy), so
the official client runs unmodified against it. State lives in plain dicts the tests edit
through the methods below, each edit bumping the resourceVersion and waking the watchers.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

# (group path, version, plural) -> kind, for the resources served.
RESOURCES = {
    ("api", "v1", "pods"): "Pod",
    ("apis/apps", "v1", "deployments"): "Deployment",
    ("apis/autoscaling", "v2", "horizontalpodautoscalers"): "HorizontalPodAutoscaler",
    ("apis/discovery.k8s.io", "v1", "endpointslices"): "EndpointSlice",
}


VERSION = {"major": "1", "minor": "30", "gitVersion": "v1.30.0", "platform": "linux/amd64"}


def _api_version(group_path: str, version: str) -> str:
    return version if group_path == "api" else f"{group_path.removeprefix('apis/')}/{version}"


def _matches(labels: dict, selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


def _merge(target: dict, patch: dict) -> None:
    """RFC 7386 merge patch (also what the scalar fields used here get from a strategic merge)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class FakeKubeApi:
    """Holds the objects and runs the HTTP server on a free loopback port."""

    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.lock = threading.Condition()
        self.version = 100
        self.objects: dict[tuple, dict[tuple[str, str], dict]] = {key: {} for key in RESOURCES}
        self.events: list[tuple[int, tuple, str, dict]] = []  # (rv, resource, type, object)
        self.oldest_event = 0  # versions before this are "compacted": watching from them gets 410
        self.proxy_targets: dict[tuple[str, str], str] = {}  # (namespace, "pod:port") -> base URL
        self.requests: list[tuple[str, str]] = []
        self.closing = False
        self.generation = 0  # bumped by drop_watches(); open streams of an older one hang up
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> FakeKubeApi:
        self.thread.start()
        return self

    def close(self) -> None:
        with self.lock:
            self.closing = True
            self.lock.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # -- state edits, as the controllers of a real cluster would make them ---------------------

    def put(self, resource: tuple, obj: dict) -> dict:
        """Create or replace an object (ADDED or MODIFIED event)."""
        group_path, version, _ = resource
        obj = copy.deepcopy(obj)
        obj["kind"] = RESOURCES[resource]
        obj["apiVersion"] = _api_version(group_path, version)
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        with self.lock:
            self.version += 1
            meta["resourceVersion"] = str(self.version)
            meta.setdefault("uid", f"uid-{meta['name']}")
            event = "MODIFIED" if key in self.objects[resource] else "ADDED"
            self.objects[resource][key] = obj
            self.events.append((self.version, resource, event, copy.deepcopy(obj)))
            self.lock.notify_all()
        return obj

    def delete(self, resource: tuple, namespace: str, name: str) -> None:
        with self.lock:
            obj = self.objects[resource].pop((namespace, name))
            self.version += 1
            obj["metadata"]["resourceVersion"] = str(self.version)
            self.events.append((self.version, resource, "DELETED", obj))
            self.lock.notify_all()

    def expire(self, resource: tuple, obj: dict) -> None:
        """Store `obj` without an event, compact the history and end open watches: the clients
        missed a change and their versions are gone, so resuming answers 410 Gone and only a new
        list shows the change (what etcd compaction during a watch outage does)."""
        meta = obj["metadata"]
        obj = copy.deepcopy(obj)
        obj["kind"] = RESOURCES[resource]
        obj["apiVersion"] = _api_version(resource[0], resource[1])
        with self.lock:
            self.version += 1
            obj["metadata"]["resourceVersion"] = str(self.version)
            self.objects[resource][(meta["namespace"], meta["name"])] = obj
            self.version += 1
            self.oldest_event = self.version + 1
            self.events.clear()
            self.generation += 1
            self.lock.notify_all()

    def get(self, resource: tuple, namespace: str, name: str) -> dict:
        with self.lock:
            return copy.deepcopy(self.objects[resource][(namespace, name)])


def _handler(api: FakeKubeApi):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        # -- plumbing --------------------------------------------------------------------------

        def _send_json(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _status(self, code: int, reason: str, message: str) -> None:
            self._send_json(
                code,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": message,
                    "reason": reason,
                    "code": code,
                },
            )

        def _route(self):
            """(resource, namespace, name, subresource, rest) or None."""
            parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
            if parts[0] == "api":
                group_path, rest = "api", parts[1:]
            elif parts[0] == "apis" and len(parts) > 2:
                group_path, rest = f"apis/{parts[1]}", parts[2:]
            else:
                return None
            if len(rest) < 4 or rest[1] != "namespaces":
                return None
            version, _, namespace, plural, *tail = rest
            resource = (group_path, version, plural)
            if resource not in RESOURCES:
                return None
            name = tail[0] if tail else None
            sub = tail[1] if len(tail) > 1 else None
            return resource, namespace, name, sub, tail[2:]

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {api.token}":
                return True
            self._status(401, "Unauthorized", "Unauthorized")
            return False

        def _body(self):
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"null")

        # -- verbs -----------------------------------------------------------------------------

        def do_GET(self) -> None:
            api.requests.append(("GET", self.path))
            path = urlsplit(self.path).path
            if path == "/version":  # public on real servers too
                return self._send_json(200, VERSION)
            if not self._authorized():
                return
            route = self._route()
            if route is None:
                return self._status(404, "NotFound", f"the server could not find {self.path}")
            resource, namespace, name, sub, rest = route
            query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
            if name is None:
                if query.get("watch", "").lower() in ("true", "1"):
                    return self._watch(resource, namespace, query)
                return self._list(resource, namespace, query)
            with api.lock:
                obj = copy.deepcopy(api.objects[resource].get((namespace, name)))
            if sub == "proxy" and resource[2] == "pods":
                return self._proxy(namespace, name, "/".join(rest))
            if obj is None:
                return self._status(404, "NotFound", f'{resource[2]} "{name}" not found')
            if sub == "scale" and resource[2] == "deployments":
                return self._send_json(200, _scale(obj))
            self._send_json(200, obj)

        def do_PATCH(self) -> None:
            api.requests.append(("PATCH", self.path))
            if not self._authorized():
                return
            route = self._route()
            if route is None or route[2] is None:
                return self._status(404, "NotFound", f"the server could not find {self.path}")
            resource, namespace, name, sub, _ = route
            patch = self._body()
            content_type = self.headers.get("Content-Type", "")
            if "json-patch" in content_type or not isinstance(patch, dict):
                return self._status(415, "UnsupportedMediaType", f"{content_type} not supported here")
            with api.lock:
                obj = copy.deepcopy(api.objects[resource].get((namespace, name)))
            if obj is None:
                return self._status(404, "NotFound", f'{resource[2]} "{name}" not found')
            if sub == "scale" and resource[2] == "deployments":
                replicas = patch.get("spec", {}).get("replicas")
                if not isinstance(replicas, int) or replicas < 0:
                    return self._status(422, "Invalid", "spec.replicas: Invalid value")
                obj["spec"]["replicas"] = replicas
                return self._send_json(200, _scale(api.put(resource, obj)))
            _merge(obj, patch)
            self._send_json(200, api.put(resource, obj))

        # -- handlers --------------------------------------------------------------------------

        def _selected(self, resource, namespace, query) -> list[dict]:
            return [
                copy.deepcopy(obj)
                for (ns, _), obj in sorted(api.objects[resource].items())
                if ns == namespace and _matches(obj["metadata"].get("labels", {}), query.get("labelSelector"))
            ]

        def _list(self, resource, namespace, query) -> None:
            group_path, version, _ = resource
            with api.lock:
                items = self._selected(resource, namespace, query)
                list_version = str(api.version)
            self._send_json(
                200,
                {
                    "kind": RESOURCES[resource] + "List",
                    "apiVersion": _api_version(group_path, version),
                    "metadata": {"resourceVersion": list_version},
                    "items": items,
                },
            )

        def _chunk(self, payload: dict) -> None:
            data = json.dumps(payload).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _watch(self, resource, namespace, query) -> None:
            since = int(query.get("resourceVersion") or 0)
            deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            generation = api.generation
            try:
                if since and since < api.oldest_event - 1:
                    self._chunk(
                        {
                            "type": "ERROR",
                            "object": {
                                "kind": "Status",
                                "apiVersion": "v1",
                                "status": "Failure",
                                "message": f"too old resource version: {since} ({api.oldest_event - 1})",
                                "reason": "Expired",
                                "code": 410,
                            },
                        }
                    )
                    return
                with api.lock:
                    while True:
                        for rv, res, kind, obj in api.events:
                            labels = obj["metadata"].get("labels", {})
                            if (
                                rv > since
                                and res == resource
                                and obj["metadata"]["namespace"] == namespace
                                and _matches(labels, query.get("labelSelector"))
                            ):
                                self._chunk({"type": kind, "object": obj})
                                since = rv
                        since = max(since, api.version)
                        if api.closing or api.generation != generation:
                            return
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return
                        api.lock.wait(timeout=left)
            except (BrokenPipeError, ConnectionResetError):
                return
            finally:
                try:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except OSError:
                    pass
                self.close_connection = True

        def _proxy(self, namespace: str, target: str, path: str) -> None:
            """The API server's pod proxy: forwards to the pod's port (here, a loopback URL)."""
            base = api.proxy_targets.get((namespace, target))
            if base is None:
                return self._status(503, "ServiceUnavailable", f"no endpoints available for pod {target!r}")
            try:
                with urllib.request.urlopen(f"{base}/{path}", timeout=5) as reply:
                    data = reply.read()
            except (urllib.error.URLError, OSError) as exc:
                return self._status(503, "ServiceUnavailable", f"error trying to reach pod: {exc}")
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _scale(deployment: dict) -> dict:
    meta = deployment["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "resourceVersion": meta["resourceVersion"],
        },
        "spec": {"replicas": deployment["spec"].get("replicas", 1)},
        "status": {"replicas": deployment.get("status", {}).get("replicas", 0)},
    }


def write_kubeconfig(path, server: str, token: str, namespace: str = "default", context: str = "test") -> str:
    """A kubeconfig whose current context points at `server` with a bearer token."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stand-in", "cluster": {"server": server}}],
        "users": [{"name": "ops", "user": {"token": token}}],
        "contexts": [
            {"name": context, "context": {"cluster": "stand-in", "user": "ops", "namespace": namespace}}
        ],
        "current-context": context,
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return str(path)
