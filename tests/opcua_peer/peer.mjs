// An OPC UA client built on node-opcua, a stack independent of asyncua, that the Python tests
// use to probe feederdao's servers the way a third-party SCADA or HMI would.
//
// Reads one JSON plan on stdin and prints one JSON answer on stdout (with --lines: one plan per
// line, one answer per line, so that node starts once for many plans):
//
//   {"endpoint": "opc.tcp://127.0.0.1:4841/...", "policy": "Basic256Sha256",
//    "mode": "SignAndEncrypt", "pki": "<folder of the client's own PKI>",
//    "serverCertificate": "<DER file to trust>", "user": "...", "password": "...",
//    "steps": [{"op": "read", "nodeId": "nsu=urn:...;s=Market.Status", "attribute": "Value"},
//              {"op": "write", "nodeId": "...", "dataType": "Double", "value": "NaN"},
//              {"op": "call", "objectId": "...", "methodId": "...",
//               "args": [{"dataType": "String", "value": "storm"}]},
//              {"op": "browse", "nodeId": "..."}, {"op": "endpoints"},
//              {"op": "references", "nodeId": "..."}]}
//
// The answer is {"connected": true, "results": [...]} or {"connected": false, "error": "..."},
// with "certificate", the client's own certificate (PEM) in its PKI; {"pki": ..., "init": true}
// only creates that certificate.
// Node ids may name their namespace by URI ("nsu=<uri>;s=<id>"); the peer resolves it against
// the server's NamespaceArray, as a client must (indexes are not stable across servers).
// Doubles that JSON cannot carry are written as the strings "NaN", "Infinity", "-Infinity".

import fs from "node:fs";
import readline from "node:readline";
import { OPCUACertificateManager } from "node-opcua-certificate-manager";
import {
  AttributeIds,
  BrowseDirection,
  DataType,
  MessageSecurityMode,
  NodeClass,
  OPCUAClient,
  SecurityPolicy,
  UserTokenType,
  Variant,
} from "node-opcua-client";

function number(value) {
  if (value === "NaN") return Number.NaN;
  if (value === "Infinity") return Number.POSITIVE_INFINITY;
  if (value === "-Infinity") return Number.NEGATIVE_INFINITY;
  return value;
}

function plain(value) {
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value) || ArrayBuffer.isView(value)) return Array.from(value, plain);
  if (value && typeof value === "object") {
    if (typeof value.toJSON === "function") return value.toJSON();
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

function dataValue(dv) {
  return {
    status: dv.statusCode.name,
    value: plain(dv.value ? dv.value.value : null),
    dataType: dv.value ? DataType[dv.value.dataType] : null,
    sourceTimestamp: dv.sourceTimestamp ? dv.sourceTimestamp.toISOString() : null,
    serverTimestamp: dv.serverTimestamp ? dv.serverTimestamp.toISOString() : null,
  };
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function main(plan) {
  const pki = plan.pki;
  fs.mkdirSync(pki, { recursive: true });
  const manager = new OPCUACertificateManager({
    rootFolder: pki,
    automaticallyAcceptUnknownCertificate: false,
  });
  await manager.initialize();
  if (plan.serverCertificate) {
    // pin the server: its certificate goes on this client's trust list, nothing else is trusted
    const der = fs.readFileSync(plan.serverCertificate);
    await manager.trustCertificate(der);
  }
  const client = OPCUAClient.create({
    applicationName: "node-opcua-peer",
    applicationUri: plan.applicationUri || "urn:feederdao:tests:node-opcua-peer",
    clientCertificateManager: manager,
    securityPolicy: SecurityPolicy[plan.policy || "Basic256Sha256"],
    securityMode: MessageSecurityMode[plan.mode || "SignAndEncrypt"],
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
    requestedSessionTimeout: 20000,
  });
  const answer = {
    connected: false,
    results: [],
    certificate: `${pki}/own/certs/client_certificate.pem`,
  };
  if (plan.init) {
    // only make this client's own certificate (so a test can trust, or not trust, it)
    await client.createDefaultCertificate();
    return answer;
  }
  try {
    await client.connect(plan.endpoint);
  } catch (err) {
    answer.error = `connect: ${err.message.split("\n")[0]}`;
    return answer;
  }
  try {
    if ((plan.steps || []).every((s) => s.op === "endpoints")) {
      for (const step of plan.steps) answer.results.push(await endpoints(client));
      answer.connected = true;
      return answer;
    }
    const identity = plan.user
      ? { type: UserTokenType.UserName, userName: plan.user, password: plan.password || "" }
      : { type: UserTokenType.Anonymous };
    let session;
    try {
      session = await client.createSession(identity);
    } catch (err) {
      answer.error = `session: ${err.message.split("\n")[0]}`;
      return answer;
    }
    answer.connected = true;
    try {
      const namespaces = (await session.read({ nodeId: "i=2255", attributeId: AttributeIds.Value }))
        .value.value;
      const resolve = (id) => {
        const m = /^nsu=([^;]+);(.*)$/.exec(id);
        if (!m) return id;
        const index = namespaces.indexOf(m[1]);
        if (index < 0) throw new Error(`the server has no namespace ${m[1]}`);
        return `ns=${index};${m[2]}`;
      };
      for (const step of plan.steps || []) {
        answer.results.push(await run(session, client, step, resolve));
      }
    } finally {
      await session.close();
    }
  } finally {
    await client.disconnect();
  }
  return answer;
}

async function endpoints(client) {
  const list = await client.getEndpoints();
  return list.map((e) => ({
    url: e.endpointUrl,
    policy: e.securityPolicyUri.split("#")[1],
    mode: MessageSecurityMode[e.securityMode],
    tokens: e.userIdentityTokens.map((t) => UserTokenType[t.tokenType]),
  }));
}

async function run(session, client, step, resolve) {
  switch (step.op) {
    case "read": {
      const attributeId = AttributeIds[step.attribute || "Value"];
      return dataValue(await session.read({ nodeId: resolve(step.nodeId), attributeId }));
    }
    case "write": {
      const dataType = DataType[step.dataType];
      const value = new Variant({ dataType, value: number(step.value) });
      const status = await session.write({
        nodeId: resolve(step.nodeId),
        attributeId: AttributeIds[step.attribute || "Value"],
        value: { value },
      });
      return { status: status.name };
    }
    case "write-many": {
      const nodesToWrite = step.items.map((item) => ({
        nodeId: resolve(item.nodeId),
        attributeId: AttributeIds.Value,
        value: { value: new Variant({ dataType: DataType[item.dataType], value: number(item.value) }) },
      }));
      const statuses = await session.write(nodesToWrite);
      return statuses.map((s) => s.name);
    }
    case "call": {
      const result = await session.call({
        objectId: resolve(step.objectId),
        methodId: resolve(step.methodId),
        inputArguments: (step.args || []).map(
          (a) => new Variant({ dataType: DataType[a.dataType], value: number(a.value) }),
        ),
      });
      return {
        status: result.statusCode.name,
        inputArgumentResults: (result.inputArgumentResults || []).map((s) => s.name),
        outputs: (result.outputArguments || []).map((v) => plain(v.value)),
      };
    }
    case "browse": {
      const result = await session.browse({
        nodeId: resolve(step.nodeId),
        browseDirection: BrowseDirection.Forward,
        referenceTypeId: step.referenceType || "HierarchicalReferences",
        includeSubtypes: true,
        resultMask: 63,
      });
      return {
        status: result.statusCode.name,
        references: result.references.map((r) => ({
          browseName: r.browseName.name,
          nodeId: r.nodeId.toString(),
          nodeClass: NodeClass[r.nodeClass],
          typeDefinition: r.typeDefinition.toString(),
        })),
      };
    }
    case "arguments": {
      // a method's InputArguments / OutputArguments properties, decoded
      const { inputArguments, outputArguments } = await session.getArgumentDefinition(
        resolve(step.methodId),
      );
      const describe = (a) => ({
        name: a.name,
        dataType: a.dataType.toString(),
        description: a.description ? a.description.text : null,
      });
      return { inputs: inputArguments.map(describe), outputs: outputArguments.map(describe) };
    }
    default:
      throw new Error(`unknown step ${step.op}`);
  }
}

async function answer(plan) {
  try {
    return await main(plan);
  } catch (err) {
    return { connected: false, error: String(err.message || err) };
  }
}

if (process.argv.includes("--lines")) {
  // one plan per line on stdin, one answer per line on stdout (node starts once)
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const reply = await answer(JSON.parse(line));
    process.stdout.write(`\n${JSON.stringify(reply)}\n`);
  }
  process.exit(0);
} else {
  const reply = await answer(await readStdin());
  process.stdout.write(`${JSON.stringify(reply)}\n`);
  process.exit(0);
}
