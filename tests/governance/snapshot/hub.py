"""A local stand-in for the Snapshot hub's GraphQL endpoint, answering in the hub's format."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Hub:
    """Serves ``data`` ({"space", "proposals", "votes": {proposal_id: [...]}}) on 127.0.0.1.
    ``rate_limit`` answers that many requests with 429 first; ``delay_s`` stalls answers."""

    def __init__(self, data: dict[str, Any], rate_limit: int = 0, delay_s: float = 0.0) -> None:
        self.data = data
        self.rate_limit = rate_limit
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                hub.requests.append({"body": body, "api_key": self.headers.get("x-api-key")})
                if hub.rate_limit > 0:
                    hub.rate_limit -= 1
                    self.send_response(429)
                    self.send_header("retry-after", "0")
                    self.end_headers()
                    return
                if hub.delay_s:
                    time.sleep(hub.delay_s)
                answer = hub.answer(body["query"], body.get("variables") or {})
                raw = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/graphql"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Hub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, query: str, v: dict[str, Any]) -> dict[str, Any]:
        root = re.search(r"\{\s*(\w+)\s*\(", query)
        field = root.group(1) if root else ""
        if field == "space":
            space = self.data["space"] if self.data["space"]["id"] == v["id"] else None
            return {"data": {"space": space}}
        if field == "proposal":
            found = [p for p in self.data["proposals"] if p["id"] == v["id"]]
            return {"data": {"proposal": found[0] if found else None}}
        if field == "proposals":
            items = [
                p
                for p in self.data["proposals"]
                if p["space"]["id"] == v["space"] and ("state" not in v or p["state"] == v["state"])
            ]
            return {"data": {"proposals": items[v["skip"] : v["skip"] + v["first"]]}}
        if field == "votes":
            items = self.data["votes"].get(v["proposal"], [])
            return {"data": {"votes": items[v["skip"] : v["skip"] + v["first"]]}}
        return {"errors": [{"message": f"unknown query field {field!r}"}]}
