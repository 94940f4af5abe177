"""feederdao's own OPC UA server: viewers read and subscribe, only operators suspend."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from asyncua import Client, ua

from feederdao.scada_bridge.security import secure_client
from feederdao.scada_bridge.server import NAMESPACE, MarketServer
from feederdao.workflows.clearing import clear_market, open_market
from tests.scada_bridge.conftest import Pki, client_security, free_port, server_security


def test_scada_reads_prices_and_only_an_operator_suspends(pki: Pki) -> None:
    market = open_market("1-LV-rural1--2-sw", periods=4, start=datetime(2016, 6, 21, 12))
    result = clear_market(market)
    suspended: list[tuple[str, str]] = []

    async def on_suspend(reason: str, user: str) -> None:
        suspended.append((reason, user))

    sec = server_security(pki)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/feederdao/market"

    async def scenario() -> None:
        async with MarketServer(endpoint, sec, on_suspend=on_suspend) as server:
            await server.publish("2016-06-21T12:00", result)

            async def session(user: str) -> Client:
                client = Client(endpoint, timeout=4)
                await secure_client(client, client_security(pki, user=user))
                await client.connect()
                return client

            viewer = await session("scada")
            idx = await viewer.get_namespace_index(NAMESPACE)
            bus = result.bus_indices[3]
            dlmp = await viewer.get_node(
                ua.NodeId(f"Clearing.Buses.{bus}.DLMP_EUR_per_MWh", idx)
            ).read_value()
            assert dlmp == pytest.approx(list(result.prices.dlmp[:, 3]))
            fee = await viewer.get_node(
                ua.NodeId("Parameters.network_fee_eur_per_mwh", idx)
            ).read_value()
            assert fee == result.parameters.network_fee_eur_per_mwh

            # a subscription sees the next interval's publication
            seen: list[object] = []

            class Handler:
                def datachange_notification(self, node, val, data) -> None:  # type: ignore[no-untyped-def]
                    seen.append(val)

            sub = await viewer.create_subscription(50, Handler())
            await sub.subscribe_data_change(viewer.get_node(ua.NodeId("Market.Interval", idx)))
            await asyncio.sleep(0.2)
            await server.publish("2016-06-21T12:15", result)
            await asyncio.sleep(0.3)
            assert "2016-06-21T12:15" in seen

            market_obj = viewer.get_node(ua.NodeId("Market", idx))
            method = ua.NodeId("Market.SuspendDispatch", idx)
            with pytest.raises(ua.UaStatusCodeError, match="BadUserAccessDenied"):
                await market_obj.call_method(method, "viewer tries")
            with pytest.raises(ua.UaStatusCodeError, match="BadNotWritable"):
                await viewer.get_node(ua.NodeId("Market.Status", idx)).write_value("hacked")
            await viewer.disconnect()

            operator = await session("ops")
            assert (
                await operator.get_node(ua.NodeId("Market", idx)).call_method(
                    method, "storm warning"
                )
                is True
            )
            status = await operator.get_node(ua.NodeId("Market.Status", idx)).read_value()
            assert status == "suspended" and suspended == [("storm warning", "operator:ops")]
            await operator.disconnect()

    asyncio.run(scenario())
