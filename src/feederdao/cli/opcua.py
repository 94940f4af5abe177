"""``feederdao opcua`` and ``feederdao sim``: certificates, browsing, node maps, the simulator.

The commands call :mod:`feederdao.scada_bridge` only; asyncua's errors are translated there.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from feederdao.cli.consoles import CommandConsole
from feederdao.cli.errors import user_errors
from feederdao.scada_bridge.security import ClientSecurity

app = typer.Typer(help="OPC UA: certificates, browsing, node maps.", no_args_is_help=True)
console = CommandConsole()
SIM_ENDPOINT = "opc.tcp://127.0.0.1:4842/feederdao/simulator"  # serve's market server: 4841

Endpoint = Annotated[str, typer.Option("--endpoint", help="opc.tcp:// URL of the server.")]
Cert = Annotated[Path | None, typer.Option("--cert", help="Own certificate (DER).")]
Key = Annotated[Path | None, typer.Option("--key", help="Own private key (PEM).")]
ServerCert = Annotated[
    Path | None, typer.Option("--server-cert", help="The server's certificate, pinned.")
]
User = Annotated[
    str | None,
    typer.Option("--user", help="User name; the password is read from FEEDERDAO_OPCUA_PASSWORD."),
]
Policy = Annotated[
    str,
    typer.Option(
        "--policy",
        help="Basic256Sha256, Aes128_Sha256_RsaOaep "
        "or Aes256_Sha256_RsaPss (None only with --allow-insecure).",
    ),
]
Insecure = Annotated[
    bool, typer.Option("--allow-insecure", help="Permit SecurityPolicy None (a lab only).")
]


def _security(
    policy: str,
    cert: Path | None,
    key: Path | None,
    server_cert: Path | None,
    user: str | None,
    insecure: bool,
) -> ClientSecurity:
    return ClientSecurity(
        policy, cert, key, server_cert, user, os.environ.get("FEEDERDAO_OPCUA_PASSWORD"), insecure
    )


async def _connect(endpoint: str, security: ClientSecurity) -> Any:
    from feederdao.scada_bridge.client import connect_client

    return await connect_client(endpoint, security)


@app.command("gen-cert")
@user_errors
def gen_cert(
    out: Annotated[Path, typer.Option("--out", help="Folder for the certificate and key.")],
    uri: Annotated[
        str, typer.Option("--uri", help="Application URI, e.g. urn:dso:feederdao.")
    ] = "urn:feederdao:bridge",
    server: Annotated[bool, typer.Option("--server", help="A server certificate.")] = False,
    host: Annotated[
        str, typer.Option("--host", help="Host name in the certificate.")
    ] = "127.0.0.1",
) -> None:
    """Make a self-signed application certificate (DER) and private key (PEM)."""
    from feederdao.scada_bridge.security import generate_certificate

    name = "server" if server else "client"
    asyncio.run(
        generate_certificate(out / f"{name}_key.pem", out / f"{name}.der", uri, server, host)
    )
    console.print(
        f"wrote {out / f'{name}.der'} and {out / f'{name}_key.pem'} (0600) for {uri}",
        soft_wrap=True,
    )


@app.command("hash-password")
@user_errors
def hash_password_cmd() -> None:
    """Read a password (hidden, asked twice on stderr; or two lines on stdin) and print only
    its scrypt hash on stdout, for a users file."""
    from feederdao.errors import FieldError
    from feederdao.scada_bridge.security import hash_password

    password = typer.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
    if not password:
        raise FieldError("password", "the password must not be empty")
    sys.stdout.write(hash_password(password) + "\n")  # one line, never wrapped


@app.command()
@user_errors
def browse(
    endpoint: Endpoint,
    cert: Cert = None,
    key: Key = None,
    server_cert: ServerCert = None,
    user: User = None,
    policy: Policy = "Basic256Sha256",
    allow_insecure: Insecure = False,
    depth: Annotated[int, typer.Option(help="How deep below Objects.")] = 3,
) -> None:
    """List the server's namespaces and its address space below Objects."""

    async def run() -> None:
        client = await _connect(
            endpoint, _security(policy, cert, key, server_cert, user, allow_insecure)
        )
        from feederdao.scada_bridge.client import browse_tree, disconnect

        try:
            for line in await browse_tree(client, endpoint, depth):
                console.print(line, markup=False, highlight=False, soft_wrap=True)
        finally:
            await disconnect(client)

    asyncio.run(run())


@app.command()
@user_errors
def nodemap(
    from_server: Annotated[str, typer.Option("--from-server", help="opc.tcp:// URL.")],
    out: Annotated[Path, typer.Option("--out", help="Node map file to write.")] = Path(
        "nodemap.toml"
    ),
    namespace: Annotated[
        str, typer.Option(help="Namespace URI of the devices.")
    ] = "urn:feederdao:feeder-simulator",
    cert: Cert = None,
    key: Key = None,
    server_cert: ServerCert = None,
    user: User = None,
    policy: Policy = "Basic256Sha256",
    allow_insecure: Insecure = False,
) -> None:
    """Write a node map (TOML) for the devices a server exposes."""
    from feederdao.scada_bridge.nodemap import nodemap_from_server

    async def run() -> None:
        client = await _connect(
            from_server, _security(policy, cert, key, server_cert, user, allow_insecure)
        )
        from feederdao.scada_bridge.client import disconnect

        try:
            nm = await nodemap_from_server(client, from_server, namespace)
        finally:
            await disconnect(client)
        nm.write(out)
        console.print(f"wrote {out}: {len(nm.devices)} devices", soft_wrap=True)

    asyncio.run(run())


def sim(
    net: Annotated[
        str, typer.Option("--net", help="Network (as for `feederdao clear`).")
    ] = "1-LV-rural1--2-sw",
    endpoint: Annotated[
        str, typer.Option("--endpoint", help="Where to serve (loopback).")
    ] = SIM_ENDPOINT,
    cert: Annotated[Path, typer.Option("--cert", help="Server certificate (DER).")] = Path(
        "pki/server.der"
    ),
    key: Annotated[Path, typer.Option("--key", help="Server key (PEM).")] = Path(
        "pki/server_key.pem"
    ),
    trust: Annotated[
        list[Path] | None, typer.Option("--trust", help="Trusted client certificate; repeatable.")
    ] = None,
    pki: Annotated[
        Path | None,
        typer.Option(
            "--pki",
            help="Trust folder: clients in PKI/trusted/certs are trusted; an unknown client's "
            "certificate is put in PKI/rejected/certs (move it to trusted/certs to trust it).",
        ),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            help="Security policy offered (SignAndEncrypt); repeatable. Default: "
            "Basic256Sha256, Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss.",
        ),
    ] = None,
    users: Annotated[Path, typer.Option("--users", help="Users file (TOML).")] = Path("users.toml"),
    period: Annotated[float, typer.Option(help="Simulation cycle (s).")] = 1.0,
) -> None:
    """Serve a network's controllable devices over OPC UA and simulate them until Ctrl-C."""
    import logging

    from feederdao.grid_model.powerflow import AcEvaluator
    from feederdao.scada_bridge.security import DEFAULT_POLICIES, ServerSecurity, read_users_file
    from feederdao.scada_bridge.simulator import FeederSimulator
    from feederdao.workflows.network import open_network

    security = ServerSecurity(
        cert,
        key,
        tuple(trust or ()),
        read_users_file(users),
        tuple(policy or DEFAULT_POLICIES),
        trust_folder=pki,
    )
    logging.getLogger("asyncua").setLevel(logging.ERROR)  # feederdao reports what matters
    opened = open_network(net)
    simulator = FeederSimulator(
        opened.view,
        AcEvaluator(opened.loaded.net, opened.view),
        endpoint,
        security,
        period_s=period,
    )

    async def run() -> None:
        async with simulator:
            console.print(
                f"simulating {len(simulator.devices)} devices of {net} on {endpoint} "
                f"({', '.join(security.policies)}; Ctrl-C stops)",
                soft_wrap=True,
            )
            sys.stdout.flush()  # a log pipe sees that the simulator is up
            while True:
                await asyncio.sleep(3600)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        console.print("stopped")
