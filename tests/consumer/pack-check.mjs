// What `npm pack pkg/` puts in the tarball, checked before any app installs it: only the files
// the package needs (its entry point and types, the two wasm builds, the shipped weights and their
// list, README, package.json) and no install-time scripts, so `npm install r2unet-wasm` runs
// nothing and ships nothing else (no sources, lock files, tsconfig, node_modules).
// Usage: node pack-check.mjs path/to/r2unet-wasm-X.Y.Z.tgz
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';

const tarball = process.argv[2];
assert.ok(tarball, 'usage: node pack-check.mjs TARBALL');
const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
const allowed = [
  /^package\/(README\.md|package\.json|index\.js|index\.d\.ts|pool-worker\.js)$/,
  /^package\/(cpu|webgpu)\/r2unet_wasm(\.js|\.d\.ts|_bg\.wasm)$/,
  /^package\/models\/(index\.js|index\.d\.ts|(retina|skin|lung)\.bpk)$/,
];
const unexpected = files.filter((f) => !allowed.some((re) => re.test(f)));
assert.deepEqual(unexpected, [], `unexpected files in ${tarball}`);
for (const needed of ['package/index.js', 'package/index.d.ts', 'package/pool-worker.js', 'package/cpu/r2unet_wasm_bg.wasm']) {
  assert.ok(files.includes(needed), `${needed} missing from ${tarball}`);
}
const manifest = JSON.parse(execFileSync('tar', ['xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }));
const hooks = ['preinstall', 'install', 'postinstall', 'prepare', 'preprepare', 'postprepare']
  .filter((h) => manifest.scripts?.[h]);
assert.deepEqual(hooks, [], 'install-time scripts in package.json');
assert.deepEqual(Object.keys(manifest.dependencies ?? {}), [], 'runtime dependencies');
console.log(`pack-check: ${files.length} files, all expected; no install scripts, no dependencies`);
