#!/usr/bin/env node
// Offline, what `cargo deny check bans` checks (scripts/test.sh, lint lane), over the crates that
// are really built (every target, normal and build dependencies; `cargo tree`), not the whole
// lock file, which also lists optional crates no build enables:
// - banned: HTTP clients, TLS stacks and system OpenSSL. r2unet promises that nothing is
//   uploaded; no artefact (the CLI, the wasm module) links a way to reach the network, so a
//   dependency update that pulls one in fails here instead of shipping.
// - duplicates: crates built in two or more versions are listed (cargo-deny's
//   `multiple-versions = "warn"`): they cost build time and download, but are not an error.
//
//   cargo tree --workspace --target all -e normal,build --prefix none --locked | node scripts/check-bans.mjs
import { readFileSync } from 'node:fs';

const BANNED = new Map([
  ['reqwest', 'an HTTP client'], ['ureq', 'an HTTP client'], ['hyper', 'an HTTP stack'],
  ['curl', 'an HTTP client'], ['isahc', 'an HTTP client'], ['surf', 'an HTTP client'],
  ['native-tls', 'a TLS stack'], ['rustls', 'a TLS stack'], ['openssl', 'system OpenSSL'],
  ['openssl-sys', 'system OpenSSL'], ['tokio-tungstenite', 'a WebSocket client'],
]);

const versions = new Map();
for (const line of readFileSync(0, 'utf8').split('\n')) {
  const [name, version] = line.trim().split(/\s+/);
  if (!name || !version?.startsWith('v')) continue;
  if (!versions.has(name)) versions.set(name, new Set());
  versions.get(name).add(version);
}
if (versions.size === 0) {
  console.error('error: check-bans: no crates on stdin (pipe `cargo tree ... --prefix none` into it)');
  process.exit(1);
}
const banned = [...versions.keys()].filter((n) => BANNED.has(n));
const duplicated = [...versions].filter(([, v]) => v.size > 1);
if (process.argv.includes('--list')) {
  for (const [name, v] of duplicated) console.log(`duplicate: ${name} ${[...v].join(' ')}`);
}
if (banned.length) {
  console.error(`error: banned crates in the build: ${banned.map((n) => `${n} ${[...versions.get(n)].join(' ')} (${BANNED.get(n)})`).join(', ')}; see \`cargo tree -i NAME\``);
  process.exit(1);
}
console.log(`bans: ${versions.size} crates built, none banned; ${duplicated.length} in two or more versions (--list names them)`);
