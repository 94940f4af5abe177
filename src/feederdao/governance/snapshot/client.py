"""A client for the Snapshot hub's GraphQL API.

The HTTP transport is injected (tests hand it a local server); the hub URL and an optional API
key are configurable. Lists are paged with ``first``/``skip``; a 429 is answered with a backoff
(honouring ``Retry-After``); timeouts and transport errors are retried, then reported.

The hub returns votes without their signatures (those are on IPFS), so what this client can
verify is the voting power: :func:`feederdao.governance.snapshot.power.voting_power` recomputes
it from the chain at the proposal's snapshot block. Votes collected by feederdao itself carry
their signatures and are verified in full (:mod:`feederdao.governance.snapshot.votes`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from feederdao.governance.errors import SnapshotError as SnapshotError
from feederdao.governance.snapshot.message import loads_strict
from feederdao.governance.snapshot.votes import SnapshotProposal

DEFAULT_HUB = "https://hub.snapshot.org/graphql"

_PROPOSAL_FIELDS = (
    "id title body choices start end snapshot state type quorum space { id } "
    "strategies { name network params } scores scores_total votes"
)


@dataclass(frozen=True)
class HubVote:
    """A vote as the hub reports it (no signature: that is on IPFS)."""

    id: str
    voter: str
    choice: Any
    vp: float
    created: int
    reason: str = ""


@dataclass(frozen=True)
class HubProposal:
    proposal: SnapshotProposal
    title: str
    state: str
    scores: tuple[float, ...]
    scores_total: float
    votes: int


class SnapshotClient:
    def __init__(
        self,
        hub_url: str = DEFAULT_HUB,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        page_size: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"content-type": "application/json"}
        if api_key:
            headers["x-api-key"] = api_key
        self.hub_url = hub_url
        self._http = httpx.Client(transport=transport, timeout=timeout_s, headers=headers)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.page_size = page_size
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SnapshotClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one GraphQL query; retry 429s, timeouts and transport errors with backoff."""
        delay = self.backoff_s
        last = ""
        for _ in range(self.max_retries + 1):
            try:
                response = self._http.post(
                    self.hub_url, json={"query": query, "variables": variables or {}}
                )
            except httpx.TimeoutException:
                last = f"no answer within {self._http.timeout.read} s"
            except httpx.TransportError as exc:
                last = f"transport error: {exc}"
            else:
                if response.status_code == 429:
                    last = "rate limited (429)"
                    retry_after = response.headers.get("retry-after")
                    wait = (
                        float(retry_after)
                        if retry_after and retry_after.replace(".", "", 1).isdigit()
                        else delay
                    )
                    self._sleep(wait)
                    delay = min(delay * 2, 30.0)
                    continue
                if response.status_code >= 400:
                    raise SnapshotError(
                        f"{self.hub_url} answered {response.status_code}: {response.text[:200]}"
                    )
                try:
                    body = loads_strict(response.content)
                except ValueError as exc:
                    raise SnapshotError(f"{self.hub_url} answered invalid JSON: {exc}") from exc
                if not isinstance(body, dict):
                    raise SnapshotError(f"{self.hub_url} answered {type(body).__name__}, not {{}}")
                if body.get("errors"):
                    messages = "; ".join(e.get("message", "?") for e in body["errors"])
                    raise SnapshotError(f"{self.hub_url}: {messages}")
                return dict(body.get("data") or {})
            self._sleep(delay)
            delay = min(delay * 2, 30.0)
        raise SnapshotError(
            f"{self.hub_url} unreachable after {self.max_retries + 1} tries: {last}"
        )

    def _pages(self, field: str, query: str, variables: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        skip = 0
        while True:
            page = self.query(query, {**variables, "first": self.page_size, "skip": skip})
            items = page.get(field) or []
            out.extend(items)
            if len(items) < self.page_size:
                return out
            skip += self.page_size

    def space(self, space_id: str) -> dict[str, Any]:
        data = self.query(
            "query Space($id: String!) { space(id: $id) { id name network symbol "
            "strategies { name network params } voting { quorum type } } }",
            {"id": space_id},
        )
        if not data.get("space"):
            raise SnapshotError(f"no Snapshot space {space_id!r}")
        return dict(data["space"])

    def proposals(self, space: str, state: str | None = None) -> list[HubProposal]:
        where = "{ space_in: [$space]" + (", state: $state" if state else "") + " }"
        params = "$space: String!, $first: Int!, $skip: Int!" + (
            ", $state: String!" if state else ""
        )
        q = (
            f"query Proposals({params}) {{ proposals(first: $first, skip: $skip, "
            f'where: {where}, orderBy: "created", orderDirection: desc) {{ '
            f"{_PROPOSAL_FIELDS} }} }}"
        )
        variables: dict[str, Any] = {"space": space}
        if state:
            variables["state"] = state
        return [_proposal(p) for p in self._pages("proposals", q, variables)]

    def proposal(self, proposal_id: str) -> HubProposal:
        data = self.query(
            f"query Proposal($id: String!) {{ proposal(id: $id) {{ {_PROPOSAL_FIELDS} }} }}",
            {"id": proposal_id},
        )
        if not data.get("proposal"):
            raise SnapshotError(f"no Snapshot proposal {proposal_id}")
        return _proposal(data["proposal"])

    def votes(self, proposal_id: str) -> list[HubVote]:
        q = (
            "query Votes($proposal: String!, $first: Int!, $skip: Int!) { votes(first: $first, "
            'skip: $skip, where: { proposal: $proposal }, orderBy: "created", '
            "orderDirection: asc) { id voter choice vp created reason } }"
        )
        return [_vote(v) for v in self._pages("votes", q, {"proposal": proposal_id})]


def _vote(raw: dict[str, Any]) -> HubVote:
    try:
        vp = raw.get("vp") or 0
        if isinstance(vp, bool) or not isinstance(vp, int | float):
            raise TypeError(f"vp {vp!r} is not a number")
        return HubVote(
            str(raw["id"]),
            str(raw["voter"]),
            raw["choice"],
            float(vp),
            int(raw["created"]),
            str(raw.get("reason") or ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"the hub's vote has an unexpected shape: {exc}") from exc


def _proposal(raw: dict[str, Any]) -> HubProposal:
    try:
        p = SnapshotProposal(
            id=str(raw["id"]),
            space=str((raw.get("space") or {}).get("id", "")),
            voting_type=str(raw.get("type") or "single-choice"),
            choices=tuple(str(c) for c in raw.get("choices") or ()),
            start=int(raw["start"]),
            end=int(raw["end"]),
            snapshot_block=int(raw.get("snapshot") or 0),
            quorum=float(raw.get("quorum") or 0),
            strategies=tuple(raw.get("strategies") or ()),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"the hub's proposal has an unexpected shape: {exc}") from exc
    return HubProposal(
        p,
        str(raw.get("title") or ""),
        str(raw.get("state") or ""),
        tuple(float(s) for s in raw.get("scores") or ()),
        float(raw.get("scores_total") or 0),
        int(raw.get("votes") or 0),
    )
