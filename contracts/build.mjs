// Compile contracts/src with solc-js (standard JSON, optimizer on, evmVersion cancun) into
// build/<Contract>.json ({abi, bytecode}); skipped when nothing changed since the last build.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, "src");
const outDir = join(here, "build");
const settings = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
};

const sources = {};
for (const file of readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[`src/${file}`] = { content: readFileSync(join(srcDir, file), "utf8") };
}
const pkg = JSON.parse(readFileSync(join(here, "package.json"), "utf8"));
const fingerprint = createHash("sha256")
  .update(JSON.stringify({ sources, settings, deps: pkg.dependencies, solc: solc.version() }))
  .digest("hex");
const stamp = join(outDir, ".fingerprint");
if (existsSync(stamp) && readFileSync(stamp, "utf8") === fingerprint) {
  writeFileSync(stamp, fingerprint); // newer than the sources again, for make
  console.log("contracts up to date");
  process.exit(0);
}

function findImports(path) {
  const candidates = [join(here, "node_modules", path), resolve(here, path)];
  for (const candidate of candidates) {
    if (existsSync(candidate)) return { contents: readFileSync(candidate, "utf8") };
  }
  return { error: `import not found: ${path}` };
}

const input = { language: "Solidity", sources, settings };
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

mkdirSync(outDir, { recursive: true });
let count = 0;
for (const [file, contracts] of Object.entries(output.contracts)) {
  if (!file.startsWith("src/")) continue;
  for (const [name, artifact] of Object.entries(contracts)) {
    writeFileSync(
      join(outDir, `${name}.json`),
      JSON.stringify({ contractName: name, abi: artifact.abi, bytecode: "0x" + artifact.evm.bytecode.object }),
    );
    count++;
  }
}
writeFileSync(stamp, fingerprint);
console.log(`compiled ${count} contracts with solc ${solc.version()} (evm cancun, optimizer on)`);
