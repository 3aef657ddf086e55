#!/usr/bin/env node
// Offline, what `cargo deny check licenses sources` checks (scripts/test.sh, lint lane):
// every crate in Cargo.lock's resolution (all platforms and features, so more than any one build
// links) must come from crates.io or this workspace, and carry a licence expression that an
// allowed licence satisfies. Prints the count per licence; `--list` prints every crate.
//
//   cargo metadata --format-version 1 --locked | node scripts/check-licenses.mjs [--list]
import { readFileSync } from 'node:fs';

// Permissive licences, and MPL-2.0 (file-level copyleft: changes to those files stay open; using
// the crates as they are imposes nothing on this project's code).
const ALLOWED = new Set([
  'MIT', 'Apache-2.0', 'Apache-2.0 WITH LLVM-exception', 'BSD-2-Clause', 'BSD-3-Clause', 'ISC',
  'Zlib', 'Unicode-3.0', 'Unicode-DFS-2016', 'Unlicense', '0BSD', 'CC0-1.0', 'BSL-1.0', 'MPL-2.0',
  'CDLA-Permissive-2.0', 'NCSA',
]);
// Crates whose manifest names a licence file instead of an SPDX expression, read by hand.
const BY_FILE = { cfg_block: 'Apache-2.0' };
const CRATES_IO = 'registry+https://github.com/rust-lang/crates.io-index';

/** Whether an SPDX expression (AND, OR, WITH, parentheses; "/" as OR) is satisfied. */
function satisfied(expr) {
  const tokens = expr.replace(/\//g, ' OR ').replace(/([()])/g, ' $1 ').trim().split(/\s+/);
  let i = 0;
  const atom = () => {
    if (tokens[i] === '(') { i++; const v = or(); i++; return v; }
    let id = tokens[i++];
    if (tokens[i] === 'WITH') { id += ` WITH ${tokens[i + 1]}`; i += 2; }
    return ALLOWED.has(id);
  };
  const and = () => { let v = atom(); while (tokens[i] === 'AND') { i++; v = atom() && v; } return v; };
  const or = () => { let v = and(); while (tokens[i] === 'OR') { i++; v = and() || v; } return v; };
  return or();
}

const meta = JSON.parse(readFileSync(0, 'utf8'));
const workspace = new Set(meta.workspace_members);
const counts = new Map();
const problems = [];
for (const p of meta.packages) {
  if (workspace.has(p.id)) continue;
  if (p.source !== CRATES_IO) problems.push(`${p.name} ${p.version}: source ${p.source ?? 'a path outside the workspace'}`);
  const license = p.license ?? BY_FILE[p.name];
  if (!license) problems.push(`${p.name} ${p.version}: no licence expression (file ${p.license_file})`);
  else if (!satisfied(license)) problems.push(`${p.name} ${p.version}: ${license} is not allowed`);
  counts.set(license, (counts.get(license) ?? 0) + 1);
  if (process.argv.includes('--list')) console.log(`${p.name}\t${p.version}\t${license}`);
}
for (const [license, n] of [...counts].sort((a, b) => b[1] - a[1])) console.log(`${String(n).padStart(4)}  ${license}`);
const total = [...counts.values()].reduce((a, b) => a + b, 0);
if (problems.length) {
  console.error(`error: ${problems.length} crate(s) fail the licence/source check:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`licences: ${total} crates from crates.io, every licence allowed`);
