"""The engineering information model feederdao's servers expose.

Analog values are ``AnalogItemType`` variables (OPC UA Part 8) with an ``EngineeringUnits``
property (UNECE Recommendation 20 codes in the OPC UA ``EUInformation`` encoding, namespace
:data:`UNECE_NAMESPACE`) and an ``EURange`` (for setpoints and measurements: the device's
nameplate); devices are instances of feederdao ``ObjectTypes`` (:data:`DEVICE_TYPES`, subtypes of
``FeederDeviceType``) so a client can browse by type; every node carries a description of what
it means, its sign convention and its unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from asyncua import Node, ua

UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
TYPES_NAMESPACE = "urn:feederdao:types"


@dataclass(frozen=True)
class Unit:
    """An engineering unit: its UNECE common code (``None`` when Recommendation 20 has none)."""

    code: str | None
    symbol: str
    name: str

    def eu_information(self) -> ua.EUInformation:
        """OPC UA's encoding: the common code's characters packed into an Int32 (−1 if none)."""
        unit_id = -1
        if self.code is not None:
            unit_id = 0
            for char in self.code:
                unit_id = (unit_id << 8) | ord(char)
        return ua.EUInformation(
            NamespaceUri=UNECE_NAMESPACE if self.code else "urn:feederdao:units",
            UnitId=unit_id,
            DisplayName=ua.LocalizedText(self.symbol),
            Description=ua.LocalizedText(self.name),
        )


MW = Unit("MAW", "MW", "megawatt")
MVAR = Unit("MAR", "Mvar", "megavar")
MVA = Unit("MVA", "MVA", "megavolt ampere")
PERCENT = Unit("P1", "%", "percent")
SECOND = Unit("SEC", "s", "second")
PER_UNIT = Unit("C62", "pu", "per unit (one)")
MW_PER_S = Unit(None, "MW/s", "megawatt per second")
EUR = Unit(None, "EUR", "euro")
EUR_PER_MWH = Unit(None, "EUR/MWh", "euro per megawatt hour")


@dataclass(frozen=True)
class DeviceType:
    """A feederdao ObjectType: its browse name, numeric id in :data:`TYPES_NAMESPACE`, meaning."""

    name: str
    number: int
    description: str


FEEDER_DEVICE = DeviceType(
    "FeederDeviceType", 1000, "A piece of feeder equipment feederdao dispatches."
)
DEVICE_TYPES = {
    "pv": DeviceType(
        "PvInverterType",
        1001,
        "A photovoltaic inverter: P is generation (≥ 0, MW) up to its rating, Q its reactive "
        "output (Mvar, positive = injected).",
    ),
    "storage": DeviceType(
        "StorageType",
        1002,
        "A battery: P is charging when positive and discharging when negative (MW), within "
        "± its rating.",
    ),
    "load": DeviceType(
        "LoadType",
        1003,
        "A load with demand response: P is consumption (≥ 0, MW), Q its reactive demand (Mvar).",
    ),
    "flex_load": DeviceType(
        "FlexibleLoadType",
        1004,
        "A flexible load: P is consumption (≥ 0, MW) that the market may move.",
    ),
    "renewable": DeviceType(
        "RenewableGeneratorType",
        1007,
        "An inverter-connected renewable plant other than PV (wind, biomass, hydro, aggregated "
        "small renewables): P is generation (≥ 0, MW) up to its available power, Q its reactive "
        "output (Mvar, positive = injected).",
    ),
    "tap": DeviceType(
        "TapChangerType",
        1005,
        "A transformer on-load tap changer, set by an integer tap position within its range.",
    ),
    "capacitor": DeviceType(
        "CapacitorBankType",
        1006,
        "A switched capacitor bank, set by an integer number of steps within its range.",
    ),
}


async def add_types(server: Any) -> dict[str, ua.NodeId]:
    """Register :data:`TYPES_NAMESPACE` and its ObjectTypes; return their ids by device kind."""
    idx = await server.register_namespace(TYPES_NAMESPACE)
    base = server.get_node(ua.NodeId(ua.ObjectIds.BaseObjectType))
    root = await base.add_object_type(
        ua.NodeId(FEEDER_DEVICE.number, idx), ua.QualifiedName(FEEDER_DEVICE.name, idx)
    )
    await describe(root, FEEDER_DEVICE.description)
    out: dict[str, ua.NodeId] = {}
    for kind, t in DEVICE_TYPES.items():
        node = await root.add_object_type(ua.NodeId(t.number, idx), ua.QualifiedName(t.name, idx))
        await describe(node, t.description)
        out[kind] = node.nodeid
    return out


async def describe(node: Node, text: str) -> None:
    """Set a node's Description (asyncua repeats the browse name by default)."""
    await node.write_attribute(
        ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(text)))
    )


def _range(low: float, high: float) -> ua.Range:
    return ua.Range(Low=float(low), High=float(high))


async def add_analog(
    parent: Node,
    nodeid: ua.NodeId,
    name: str,
    value: float | list[float],
    unit: Unit,
    description: str,
    eu_range: tuple[float, float] | None = None,
    writable: bool = False,
) -> Node:
    """An ``AnalogItemType`` Double (scalar or array) with EngineeringUnits and, when the
    range is known and finite, EURange."""
    array = isinstance(value, list)
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = nodeid
    item.BrowseName = ua.QualifiedName(name, nodeid.NamespaceIndex)
    item.NodeClass = ua.NodeClass.Variable
    item.ParentNodeId = parent.nodeid
    item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasComponent)
    item.TypeDefinition = ua.NodeId(ua.ObjectIds.AnalogItemType)
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(description)
    attrs.DataType = ua.NodeId(ua.ObjectIds.Double)
    attrs.Value = ua.Variant(value, ua.VariantType.Double)
    attrs.ValueRank = ua.ValueRank.OneDimension if array else ua.ValueRank.Scalar
    attrs.ArrayDimensions = [0] if array else None
    level = ua.AccessLevel.CurrentRead.mask
    if writable:
        level |= ua.AccessLevel.CurrentWrite.mask
    attrs.AccessLevel = attrs.UserAccessLevel = level
    attrs.WriteMask = attrs.UserWriteMask = 0
    attrs.Historizing = False
    item.NodeAttributes = attrs
    results = await parent.session.add_nodes([item])
    results[0].StatusCode.check()
    node = Node(parent.session, results[0].AddedNodeId)
    ns = nodeid.NamespaceIndex
    key = nodeid.Identifier
    units = await node.add_property(
        ua.NodeId(f"{key}.EngineeringUnits", ns),
        ua.QualifiedName("EngineeringUnits", 0),
        ua.Variant(unit.eu_information(), ua.VariantType.ExtensionObject),
    )
    await describe(units, f"The unit of {name}: {unit.name} ({unit.symbol}).")
    if eu_range is not None and all(math.isfinite(v) for v in eu_range):
        rng = await node.add_property(
            ua.NodeId(f"{key}.EURange", ns),
            ua.QualifiedName("EURange", 0),
            ua.Variant(_range(*eu_range), ua.VariantType.ExtensionObject),
        )
        await describe(rng, f"The range {name} is valid in ({unit.symbol}).")
    return node


async def add_value(
    parent: Node,
    nodeid: ua.NodeId,
    name: str,
    value: ua.Variant,
    description: str,
    writable: bool = False,
) -> Node:
    """A plain data variable (Boolean, String, integer) of the variant's DataType."""
    node = await parent.add_variable(nodeid, ua.QualifiedName(name, nodeid.NamespaceIndex), value)
    await describe(node, description)
    if writable:
        await node.set_writable()
    return node


def argument(name: str, kind: ua.VariantType, description: str) -> ua.Argument:
    """A named, described method argument."""
    return ua.Argument(
        Name=name,
        DataType=ua.NodeId(kind.value),
        ValueRank=ua.ValueRank.Scalar,
        ArrayDimensions=[],
        Description=ua.LocalizedText(description),
    )
