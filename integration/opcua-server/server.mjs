// rcbridge's independent OPC UA test server: node-opcua with native reverse
// connect (Part 6 §7.1.3), configured by one JSON document and driven over a
// JSON-lines control channel.
//
//   node server.mjs config.json      (or the config on stdin's first line: node server.mjs -)
//
// stdout carries only the control protocol, one JSON object per line:
//   {"event":"ready", ...}                     once the server listens (and has dialed out)
//   {"id":N,"ok":true|false, ...}              one answer per command
//   {"event":"stopped"}                        just before a clean exit
// stdin carries commands, one JSON object per line, each with a numeric "id":
//   {"id":1,"cmd":"read","node":"Types.Int32"}           -> {"variant": base64 of the OPC UA binary Variant}
//   {"id":2,"cmd":"set","node":"Types.Int32","variant":"<base64>"}
//   {"id":3,"cmd":"stats"}                               -> sessions, channels, subscriptions
//   {"id":4,"cmd":"trustClientCert","der":"<base64>"}
//   {"id":5,"cmd":"dropConnections"}                     -> closes every channel's socket, sessions stay
//   {"id":6,"cmd":"shutdown"}
//   {"id":7,"cmd":"raiseEvent","message":"text","severity":500} -> a BaseEventType event from the Server object
// End of stdin also shuts the server down, so it never outlives its test.
// Everything else (our log lines and node-opcua's own) goes to stderr.
//
// README.md next to this file documents the configuration and the address space.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";

// node-opcua logs with console.log: keep stdout for the protocol alone.
const protocolWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);
console.log = console.error;
console.info = console.error;
console.warn = console.error;
console.debug = console.error;

const {
    BinaryStream,
    DataType,
    ExpandedNodeId,
    LocalizedText,
    MessageSecurityMode,
    MonitoredItem,
    NodeId,
    NodeIdType,
    OPCUACertificateManager,
    OPCUAServer,
    PermissionType,
    QualifiedName,
    SecurityPolicy,
    StatusCodes,
    Variant,
    VariantArrayType,
    WellKnownRoles,
    makeRoles,
    resolveNodeId
} = await import("node-opcua");

function send(obj) {
    protocolWrite(JSON.stringify(obj) + "\n");
}

function log(...args) {
    process.stderr.write(`[rcbridge-test-server ${new Date().toISOString()}] ${args.join(" ")}\n`);
}

function fail(message) {
    send({ event: "error", error: message });
    log("fatal:", message);
    process.exit(2);
}

// ---------------------------------------------------------------- config

async function readConfig() {
    const arg = process.argv[2];
    if (!arg) {
        fail("usage: node server.mjs CONFIG.json | -");
    }
    if (arg !== "-") {
        return JSON.parse(fs.readFileSync(arg, "utf8"));
    }
    // First line of stdin is the config; the rest are commands.
    const rl = readline.createInterface({ input: process.stdin });
    const it = rl[Symbol.asyncIterator]();
    const first = await it.next();
    if (first.done) {
        fail("stdin closed before the config line");
    }
    return { config: JSON.parse(first.value), rl, it };
}

const KNOWN_KEYS = new Set([
    "applicationUri", "applicationName", "productUri", "port", "host", "hostname", "pkiDir",
    "reverseConnect", "securityPolicies", "securityModes", "autoAcceptClientCerts",
    "trustedClientCerts", "allowAnonymous", "anonymousWrite", "users", "x509Users",
    "namespaceUri", "counterIntervalMs", "counterStart", "minSampleRateMs", "generatedNodes",
    "operationLimits", "capabilities", "maxConnectionsPerEndpoint", "helloTimeoutMs",
    "certApplicationUri", "allowAnonymousTransferOnNone"
]);
const CAPABILITY_KEYS = new Set([
    "maxSessions", "maxSubscriptions", "maxMonitoredItems", "maxSubscriptionsPerSession",
    "maxMonitoredItemsPerSubscription", "maxMonitoredItemsQueueSize", "maxBrowseContinuationPoints",
    "maxArrayLength", "maxStringLength", "maxByteStringLength"
]);
const LIMIT_KEYS = new Set([
    "maxNodesPerRead", "maxNodesPerBrowse", "maxNodesPerWrite", "maxNodesPerMethodCall",
    "maxNodesPerRegisterNodes", "maxNodesPerNodeManagement", "maxMonitoredItemsPerCall",
    "maxNodesPerHistoryReadData", "maxNodesPerHistoryReadEvents", "maxNodesPerHistoryUpdateData",
    "maxNodesPerHistoryUpdateEvents", "maxNodesPerTranslateBrowsePathsToNodeIds"
]);
const ROLES = {
    operator: [WellKnownRoles.AuthenticatedUser, WellKnownRoles.Operator],
    reader: [WellKnownRoles.AuthenticatedUser, WellKnownRoles.Observer]
};

function checkKeys(obj, allowed, where) {
    for (const k of Object.keys(obj || {})) {
        if (!allowed.has(k)) {
            fail(`unknown config key ${where}${JSON.stringify(k)}`);
        }
    }
}

function normalize(raw) {
    checkKeys(raw, KNOWN_KEYS, "");
    checkKeys(raw.capabilities, CAPABILITY_KEYS, "capabilities.");
    checkKeys(raw.operationLimits, LIMIT_KEYS, "operationLimits.");
    if (!raw.pkiDir) {
        fail("config.pkiDir is required");
    }
    const cfg = {
        applicationUri: raw.applicationUri || "urn:rcbridge:test:server",
        applicationName: raw.applicationName || "rcbridge test server",
        productUri: raw.productUri || "urn:rcbridge:test:product",
        port: raw.port ?? 0,
        host: raw.host || "127.0.0.1",
        hostname: raw.hostname || "localhost",
        pkiDir: raw.pkiDir,
        reverseConnect: raw.reverseConnect || null,
        securityPolicies: (raw.securityPolicies || ["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]),
        securityModes: (raw.securityModes || ["None", "Sign", "SignAndEncrypt"]),
        autoAcceptClientCerts: raw.autoAcceptClientCerts ?? true,
        trustedClientCerts: raw.trustedClientCerts || [],
        allowAnonymous: raw.allowAnonymous ?? true,
        anonymousWrite: raw.anonymousWrite ?? true,
        users: raw.users || [],
        x509Users: raw.x509Users || [],
        namespaceUri: raw.namespaceUri || "urn:rcbridge:test",
        counterIntervalMs: raw.counterIntervalMs ?? 10,
        counterStart: raw.counterStart ?? 0,
        minSampleRateMs: raw.minSampleRateMs ?? 0,
        generatedNodes: raw.generatedNodes ?? 0,
        operationLimits: raw.operationLimits || {},
        capabilities: raw.capabilities || {},
        maxConnectionsPerEndpoint: raw.maxConnectionsPerEndpoint ?? 100,
        helloTimeoutMs: raw.helloTimeoutMs ?? 10000,
        certApplicationUri: raw.certApplicationUri || raw.applicationUri || "urn:rcbridge:test:server",
        allowAnonymousTransferOnNone: raw.allowAnonymousTransferOnNone ?? false
    };
    for (const p of cfg.securityPolicies) {
        if (!["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"].includes(p)) {
            fail(`unsupported security policy ${JSON.stringify(p)}`);
        }
    }
    for (const m of cfg.securityModes) {
        if (!["None", "Sign", "SignAndEncrypt"].includes(m)) {
            fail(`unsupported security mode ${JSON.stringify(m)}`);
        }
    }
    for (const u of [...cfg.users, ...cfg.x509Users]) {
        if (!ROLES[u.role]) {
            fail(`user role ${JSON.stringify(u.role)} is not one of ${Object.keys(ROLES).join(", ")}`);
        }
    }
    return cfg;
}

// ---------------------------------------------------------------- PKI

function pemToDer(pem) {
    const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
    if (!m) {
        throw new Error("no certificate in PEM file");
    }
    return Buffer.from(m[1].replace(/\s+/g, ""), "base64");
}

function readCertFile(file) {
    const data = fs.readFileSync(file);
    return data.toString("latin1").includes("-----BEGIN CERTIFICATE-----") ? pemToDer(data.toString("latin1")) : data;
}

// copyTrusted puts certificate files into a PKI store's trusted/certs before
// the store is initialised (file watchers are off, so the initial scan is
// what counts).
function copyTrusted(storeDir, files, prefix) {
    const dir = path.join(storeDir, "trusted", "certs");
    fs.mkdirSync(dir, { recursive: true });
    files.forEach((file, i) => {
        fs.writeFileSync(path.join(dir, `${prefix}${i}.der`), readCertFile(file));
    });
}

async function preparePKI(cfg) {
    const serverDir = path.join(cfg.pkiDir, "server");
    const userDir = path.join(cfg.pkiDir, "user");
    copyTrusted(serverDir, cfg.trustedClientCerts, "configured-client-");
    copyTrusted(userDir, cfg.x509Users.map((u) => u.certFile), "configured-user-");

    const serverCM = new OPCUACertificateManager({
        name: "server",
        rootFolder: serverDir,
        automaticallyAcceptUnknownCertificate: cfg.autoAcceptClientCerts,
        disableFileWatchers: true,
        keySize: 2048
    });
    await serverCM.initialize();
    const certFile = path.join(serverDir, "own", "certs", "certificate.pem");
    if (!fs.existsSync(certFile)) {
        const t0 = Date.now();
        const dns = [...new Set([cfg.hostname, "localhost", os.hostname()])].sort();
        await serverCM.createSelfSignedCertificate({
            applicationUri: cfg.certApplicationUri,
            dns,
            ip: ["127.0.0.1"],
            outputFile: certFile,
            subject: `/CN=${cfg.applicationName}/O=rcbridge tests`,
            startDate: new Date(Date.now() - 24 * 3600 * 1000),
            validity: 3650
        });
        log(`server certificate generated in ${Date.now() - t0} ms (dns: ${dns.join(",")})`);
    }
    const der = pemToDer(fs.readFileSync(certFile, "latin1"));
    const derFile = path.join(serverDir, "own", "certs", "certificate.der");
    fs.writeFileSync(derFile, der);

    // The user store never uses a key of its own, but initialize() would
    // generate one: give it the server's instead of paying for a second
    // RSA key generation.
    const userKey = path.join(userDir, "own", "private", "private_key.pem");
    if (!fs.existsSync(userKey)) {
        fs.mkdirSync(path.dirname(userKey), { recursive: true });
        fs.copyFileSync(path.join(serverDir, "own", "private", "private_key.pem"), userKey);
    }
    const userCM = new OPCUACertificateManager({
        name: "user",
        rootFolder: userDir,
        automaticallyAcceptUnknownCertificate: false,
        disableFileWatchers: true,
        keySize: 2048
    });
    await userCM.initialize();
    return { serverCM, userCM, certFile, derFile, der };
}

// ---------------------------------------------------------------- values

function int64(v) {
    const u = BigInt.asUintN(64, BigInt(v));
    return [Number(u >> 32n), Number(u & 0xffffffffn)];
}

const S = VariantArrayType.Scalar;

// The builtin-type variables: browse name, DataType and the known initial
// value. Keep in sync with integration/nodeua/nodes.go.
function typeVariables(nsIndex) {
    return [
        ["Boolean", DataType.Boolean, { value: true }],
        ["SByte", DataType.SByte, { value: -100 }],
        ["Byte", DataType.Byte, { value: 200 }],
        ["Int16", DataType.Int16, { value: -30000 }],
        ["UInt16", DataType.UInt16, { value: 60000 }],
        ["Int32", DataType.Int32, { value: -2000000000 }],
        ["UInt32", DataType.UInt32, { value: 4000000000 }],
        ["Int64", DataType.Int64, { arrayType: S, value: int64("-9000000000000000000") }],
        ["UInt64", DataType.UInt64, { arrayType: S, value: int64("18000000000000000000") }],
        ["Float", DataType.Float, { value: 3.25 }],
        ["Double", DataType.Double, { value: 3.141592653589793 }],
        ["String", DataType.String, { value: "Grüße, OPC UA ✓" }],
        ["DateTime", DataType.DateTime, { value: new Date("2024-01-02T03:04:05.678Z") }],
        ["Guid", DataType.Guid, { value: "72962B91-FA75-4AE6-8D28-B404DC7DAF63" }],
        ["ByteString", DataType.ByteString, { value: Buffer.from([0x00, 0x01, 0x02, 0xfe, 0xff]) }],
        ["XmlElement", DataType.XmlElement, { value: "<a>1</a>" }],
        ["NodeId", DataType.NodeId, { value: new NodeId(NodeIdType.STRING, "rcbridge", 1) }],
        // With the index, not the URI: node-opcua 2.186.4 drops an ExpandedNodeId's
        // NamespaceUri when it stores the value (node-opcua-variant cloneVariantElement).
        ["ExpandedNodeId", DataType.ExpandedNodeId, {
            value: new ExpandedNodeId(NodeIdType.STRING, "Types.Int32", nsIndex)
        }],
        ["StatusCode", DataType.StatusCode, { value: StatusCodes.BadOutOfRange }],
        ["QualifiedName", DataType.QualifiedName, { value: new QualifiedName({ namespaceIndex: 1, name: "rcbridge" }) }],
        ["LocalizedText", DataType.LocalizedText, { value: new LocalizedText({ locale: "de-DE", text: "Hallo Welt" }) }],
        ["Int32Array", DataType.Int32, {
            arrayType: VariantArrayType.Array,
            value: new Int32Array([1, -2, 3, 2147483647, -2147483648])
        }, 1, [5]],
        ["StringArray", DataType.String, { arrayType: VariantArrayType.Array, value: ["a", "b", "ç"] }, 1, [3]],
        ["DoubleMatrix", DataType.Double, {
            arrayType: VariantArrayType.Matrix,
            dimensions: [2, 3],
            value: new Float64Array([1.5, 2.5, 3.5, 4.5, 5.5, 6.5])
        }, 2, [2, 3]]
    ];
}

function encodeVariant(v) {
    const s = new BinaryStream(v.binaryStoreSize());
    v.encode(s);
    return s.buffer.toString("base64");
}

function decodeVariant(b64) {
    const v = new Variant();
    v.decode(new BinaryStream(Buffer.from(b64, "base64")));
    return v;
}

// ---------------------------------------------------------------- address space

function buildAddressSpace(server, cfg) {
    const addressSpace = server.engine.addressSpace;
    const ns = addressSpace.registerNamespace(cfg.namespaceUri);
    const objects = addressSpace.rootFolder.objects;
    const RW = "CurrentRead | CurrentWrite";

    // Every Session also holds the Anonymous role when permissions are
    // evaluated (node-opcua: SessionContext.getRolesForPermissionEvaluation),
    // so write access for Anonymous means write access for everybody.
    const base = PermissionType.Browse | PermissionType.Read | PermissionType.ReadRolePermissions |
        PermissionType.ReceiveEvents;
    const operatorOnly = [
        { roleId: resolveNodeId(WellKnownRoles.Anonymous), permissions: base },
        { roleId: resolveNodeId(WellKnownRoles.AuthenticatedUser), permissions: base },
        { roleId: resolveNodeId(WellKnownRoles.Operator), permissions: base | PermissionType.Write }
    ];
    const writable = cfg.anonymousWrite ? undefined : operatorOnly;

    // parent is { organizedBy: folder } or { componentOf: object }.
    const variable = (parent, name, nodeId, dataType, variant, opts = {}) => {
        const v = ns.addVariable({
            ...parent,
            browseName: name,
            nodeId: `s=${nodeId}`,
            dataType,
            valueRank: opts.valueRank ?? -1,
            arrayDimensions: opts.arrayDimensions,
            accessLevel: opts.readOnly ? "CurrentRead" : RW,
            userAccessLevel: opts.readOnly ? "CurrentRead" : RW,
            rolePermissions: opts.readOnly ? undefined : (opts.rolePermissions ?? writable),
            minimumSamplingInterval: 0
        });
        v.setValueFromSource(new Variant({ dataType, ...variant }));
        return v;
    };

    const types = ns.addFolder(objects, { browseName: "Types", nodeId: "s=Types" });
    for (const [name, dataType, variant, valueRank, arrayDimensions] of typeVariables(ns.index)) {
        variable({ organizedBy: types }, name, `Types.${name}`, dataType, variant, { valueRank, arrayDimensions });
    }

    const line1 = ns.addFolder(objects, { browseName: "Line1", nodeId: "s=Line1" });
    for (const [motor, speed] of [["Motor1", 1500], ["Motor2", 750]]) {
        const m = ns.addObject({ organizedBy: line1, browseName: motor, nodeId: `s=Line1.${motor}` });
        variable({ componentOf: m }, "Speed", `Line1.${motor}.Speed`, DataType.Double, { value: speed });
        variable({ componentOf: m }, "Running", `Line1.${motor}.Running`, DataType.Boolean, { value: true });
    }

    variable({ organizedBy: objects }, "ReadOnly", "ReadOnly", DataType.Int32, { value: 42 }, { readOnly: true });
    variable({ organizedBy: objects }, "OperatorOnly", "OperatorOnly", DataType.Double, { value: 10 }, { rolePermissions: operatorOnly });

    const counter = variable({ organizedBy: objects }, "Counter", "Counter", DataType.UInt32, { value: cfg.counterStart }, { readOnly: true });
    let count = cfg.counterStart;
    let timer = null;
    if (cfg.counterIntervalMs > 0) {
        timer = setInterval(() => {
            count = (count + 1) >>> 0;
            counter.setValueFromSource(new Variant({ dataType: DataType.UInt32, value: count }));
        }, cfg.counterIntervalMs);
    }

    if (cfg.generatedNodes > 0) {
        const gen = ns.addFolder(objects, { browseName: "Gen", nodeId: "s=Gen" });
        for (let i = 0; i < cfg.generatedNodes; i++) {
            variable({ organizedBy: gen }, `N${i}`, `Gen.${i}`, DataType.Int32, { value: i });
        }
    }

    const methods = ns.addObject({ organizedBy: objects, browseName: "Methods", nodeId: "s=Methods" });
    const add = ns.addMethod(methods, {
        browseName: "Add",
        nodeId: "s=Methods.Add",
        inputArguments: [
            { name: "a", description: { text: "first addend" }, dataType: DataType.Double },
            { name: "b", description: { text: "second addend" }, dataType: DataType.Double }
        ],
        outputArguments: [{ name: "sum", description: { text: "a + b" }, dataType: DataType.Double }]
    });
    add.bindMethod(async (inputArguments, _context) => {
        const [a, b] = inputArguments.map((v) => v.value);
        return {
            statusCode: StatusCodes.Good,
            outputArguments: [{ dataType: DataType.Double, value: a + b }]
        };
    });

    return {
        nsIndex: ns.index,
        resolve(name) {
            if (/^(ns=\d+;)?[isgb]=/.test(name)) {
                return addressSpace.findNode(resolveNodeId(name));
            }
            return addressSpace.findNode(new NodeId(NodeIdType.STRING, name, ns.index));
        },
        setCounter(v) {
            count = v >>> 0;
        },
        counterNode: counter,
        stop() {
            if (timer) {
                clearInterval(timer);
            }
        }
    };
}

// ---------------------------------------------------------------- main

const input = await readConfig();
const cfg = normalize(input.config ?? input);
const started = Date.now();
MonitoredItem.minimumSamplingInterval = Math.max(1, cfg.minSampleRateMs);

log(`node-opcua loaded in ${Math.round(performance.now())} ms after process start`);
const pki = await preparePKI(cfg);
log(`PKI ready after ${Date.now() - started} ms`);

const userRoles = new Map();
const passwords = new Map();
for (const u of cfg.users) {
    userRoles.set(u.username, ROLES[u.role]);
    passwords.set(u.username, u.password);
}
for (const u of cfg.x509Users) {
    userRoles.set(u.commonName, ROLES[u.role]);
}

const serverOptions = {
    port: cfg.port,
    host: cfg.host,
    hostname: cfg.hostname,
    serverCertificateManager: pki.serverCM,
    userCertificateManager: pki.userCM,
    certificateFile: pki.certFile,
    privateKeyFile: path.join(cfg.pkiDir, "server", "own", "private", "private_key.pem"),
    serverInfo: {
        applicationUri: cfg.applicationUri,
        productUri: cfg.productUri,
        applicationName: { text: cfg.applicationName, locale: "en" }
    },
    buildInfo: { productName: "rcbridge test server", manufacturerName: "rcbridge" },
    securityPolicies: cfg.securityPolicies.map((p) => SecurityPolicy[p]),
    securityModes: cfg.securityModes.map((m) => MessageSecurityMode[m]),
    allowAnonymous: cfg.allowAnonymous,
    maxConnectionsPerEndpoint: cfg.maxConnectionsPerEndpoint,
    timeout: cfg.helloTimeoutMs,
    isAuditing: false,
    allowAnonymousSubscriptionTransferOnUnsecuredChannel: cfg.allowAnonymousTransferOnNone,
    serverCapabilities: {
        ...cfg.capabilities,
        minSupportedSampleRate: cfg.minSampleRateMs,
        maxSessions: cfg.capabilities.maxSessions ?? 200,
        operationLimits: cfg.operationLimits
    },
    userManager: {
        isValidUser: (username, password) => passwords.has(username) && passwords.get(username) === password,
        getUserRoles: (username) => makeRoles(userRoles.get(username) ?? [WellKnownRoles.AuthenticatedUser])
    }
};
if (cfg.reverseConnect && (cfg.reverseConnect.clients || []).length > 0) {
    const rc = cfg.reverseConnect;
    serverOptions.reverseConnect = {
        connections: rc.clients.map((endpointUrl) => ({ endpointUrl })),
        reconnectDelay: rc.reconnectDelayMs,
        maxReconnectDelay: rc.maxReconnectDelayMs,
        connectionTimeout: rc.connectionTimeoutMs
    };
}

const server = new OPCUAServer(serverOptions);
await server.initialize();
log(`server initialized after ${Date.now() - started} ms`);
const space = buildAddressSpace(server, cfg);

server.on("create_session", (s) => log(`session created: ${s.sessionName}`));
server.on("session_closed", (s, del) => log(`session closed: ${s.sessionName} deleteSubscriptions=${del}`));
server.on("newChannel", (ch) => log(`channel from ${ch.remoteAddress}:${ch.remotePort}`));
server.on("closeChannel", (ch) => log(`channel closed ${ch.remoteAddress}:${ch.remotePort}`));

await server.start();
const port = server.endpoints[0].port;
send({
    event: "ready",
    pid: process.pid,
    port,
    endpointUrl: server.getEndpointUrl(),
    applicationUri: cfg.applicationUri,
    namespaceUri: cfg.namespaceUri,
    namespaceIndex: space.nsIndex,
    certFile: pki.certFile,
    certDerFile: pki.derFile,
    pkiDir: cfg.pkiDir,
    startupMs: Date.now() - started
});
log(`ready on ${server.getEndpointUrl()} (port ${port}) in ${Date.now() - started} ms`);

// ---------------------------------------------------------------- control channel

let stopping = false;
async function shutdown(code) {
    if (stopping) {
        return;
    }
    stopping = true;
    const t0 = Date.now();
    space.stop();
    try {
        await server.shutdown(0);
    } catch (err) {
        log("shutdown error:", err.message);
    }
    log(`shut down in ${Date.now() - t0} ms`);
    send({ event: "stopped" });
    process.exit(code);
}

function channels() {
    return server.endpoints.flatMap((ep) => ep.getChannels());
}

const commands = {
    read(req) {
        const node = space.resolve(req.node);
        if (!node) {
            throw new Error(`unknown node ${JSON.stringify(req.node)}`);
        }
        const dv = node.readValue();
        return { variant: encodeVariant(dv.value), status: dv.statusCode.value, text: dv.value.toString() };
    },
    set(req) {
        const node = space.resolve(req.node);
        if (!node) {
            throw new Error(`unknown node ${JSON.stringify(req.node)}`);
        }
        const v = decodeVariant(req.variant);
        if (node === space.counterNode) {
            space.setCounter(v.value);
        }
        node.setValueFromSource(v);
        return { text: v.toString() };
    },
    stats() {
        return {
            sessions: server.currentSessionCount,
            channels: server.currentChannelCount,
            subscriptions: server.currentSubscriptionCount
        };
    },
    async trustClientCert(req) {
        await pki.serverCM.trustCertificate(Buffer.from(req.der, "base64"));
        return {};
    },
    raiseEvent(req) {
        // Clients see it through the Server object's EventNotifier.
        const addressSpace = server.engine.addressSpace;
        addressSpace.rootFolder.objects.server.raiseEvent(addressSpace.findEventType("BaseEventType"), {
            message: { dataType: DataType.LocalizedText, value: { text: String(req.message) } },
            severity: { dataType: DataType.UInt16, value: req.severity }
        });
        return {};
    },
    dropConnections() {
        let n = 0;
        // abruptlyInterrupt ends and destroys the channel's socket; the
        // sessions on it stay, waiting for a client to reactivate them.
        for (const ch of channels()) {
            ch.abruptlyInterrupt();
            n++;
        }
        return { dropped: n };
    }
};

async function handle(line) {
    if (!line.trim()) {
        return;
    }
    let req;
    try {
        req = JSON.parse(line);
    } catch (err) {
        send({ id: null, ok: false, error: `bad JSON: ${err.message}` });
        return;
    }
    if (req.cmd === "shutdown") {
        send({ id: req.id, ok: true });
        await shutdown(0);
        return;
    }
    const fn = commands[req.cmd];
    if (!fn) {
        send({ id: req.id, ok: false, error: `unknown command ${JSON.stringify(req.cmd)}` });
        return;
    }
    try {
        send({ id: req.id, ok: true, ...(await fn(req)) });
    } catch (err) {
        send({ id: req.id, ok: false, error: err.message });
    }
}

process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));
if (input.it) {
    (async () => {
        for (let r = await input.it.next(); !r.done; r = await input.it.next()) {
            await handle(r.value);
        }
        log("stdin closed: shutting down");
        await shutdown(0);
    })();
} else {
    // Commands run one after the other, in the order they arrived.
    let queue = Promise.resolve();
    const rl = readline.createInterface({ input: process.stdin });
    rl.on("line", (line) => {
        queue = queue.then(() => handle(line));
    });
    rl.on("close", () => {
        queue = queue.then(() => {
            log("stdin closed: shutting down");
            return shutdown(0);
        });
    });
}
