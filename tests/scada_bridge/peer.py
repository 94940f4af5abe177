"""Drive feederdao's OPC UA servers with node-opcua (tests/opcua_peer), a stack independent of
asyncua, as a third-party SCADA client would."""

from __future__ import annotations

import asyncio
import atexit
import json
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PEER = Path(__file__).resolve().parents[1] / "opcua_peer"


def peer_available() -> bool:
    return (
        shutil.which("node") is not None and (PEER / "node_modules" / "node-opcua-client").is_dir()
    )


class _Node:
    """One node process for the whole test run, answering one plan per line."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[str] | None = None

    def ask(self, plan: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self.proc = subprocess.Popen(
                    ["node", str(PEER / "peer.mjs"), "--lines"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                    cwd=PEER,
                )
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(plan) + "\n")
            self.proc.stdin.flush()
            timer = threading.Timer(timeout_s, self.proc.kill)
            timer.start()
            try:
                for line in self.proc.stdout:
                    if line.startswith("{"):
                        answer: dict[str, Any] = json.loads(line)
                        return answer
            finally:
                timer.cancel()
            raise AssertionError("the node-opcua peer exited without an answer")

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


_node = _Node()
atexit.register(_node.close)


@dataclass
class NodePeer:
    """A node-opcua client with its own PKI folder (its certificate is made on first use)."""

    pki: Path
    server_certificate: Path
    user: str | None = None
    password: str | None = None
    policy: str = "Basic256Sha256"
    mode: str = "SignAndEncrypt"
    timeout_s: float = 60.0
    extra: dict[str, Any] = field(default_factory=dict)

    def _run(self, plan: dict[str, Any]) -> dict[str, Any]:
        if not peer_available():
            raise AssertionError("node-opcua is not installed: run `make opcua-peer`")
        return _node.ask(plan, self.timeout_s)

    def certificate(self) -> Path:
        """Make (once) and return this client's own certificate (PEM)."""
        answer = self._run({"pki": str(self.pki), "init": True})
        return Path(answer["certificate"])

    async def session(self, endpoint: str, *steps: dict[str, Any], **over: Any) -> dict[str, Any]:
        """Connect, open a session, run ``steps``, close; the answer as the peer prints it."""
        plan = {
            "endpoint": endpoint,
            "pki": str(self.pki),
            "serverCertificate": str(self.server_certificate),
            "user": self.user,
            "password": self.password,
            "policy": self.policy,
            "mode": self.mode,
            "steps": list(steps),
            **self.extra,
            **over,
        }
        return await asyncio.to_thread(self._run, plan)

    async def results(self, endpoint: str, *steps: dict[str, Any], **over: Any) -> list[Any]:
        answer = await self.session(endpoint, *steps, **over)
        assert answer["connected"], answer.get("error")
        results: list[Any] = answer["results"]
        return results


def nid(namespace: str, identifier: str) -> str:
    """A string node id with its namespace named by URI (the peer resolves the index)."""
    return f"nsu={namespace};s={identifier}"
