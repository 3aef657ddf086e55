// Removes the "name" custom section (function names, for debuggers only) from .wasm files in
// place. wasm-pack keeps it and offers no switch to drop it; wasm-opt would, but Debian's breaks
// this module and a newer one re-encodes it into a file that gzips worse (bench/NOTES.md).
//   node scripts/strip-wasm-names.mjs FILE.wasm...
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

function uleb(bytes, at) {
  let value = 0, shift = 0, b;
  do {
    if (at >= bytes.length) throw new Error('truncated LEB128');
    b = bytes[at++];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
  } while (b & 0x80);
  return [value, at];
}

for (const file of process.argv.slice(2)) {
  const bytes = readFileSync(file);
  if (bytes.length < 8 || bytes.readUInt32LE(0) !== 0x6d736100) throw new Error(`${file}: not a wasm module`);
  const kept = [bytes.subarray(0, 8)];
  let at = 8, dropped = 0;
  while (at < bytes.length) {
    const start = at;
    const id = bytes[at++];
    const [size, body] = uleb(bytes, at);
    const end = body + size;
    if (end > bytes.length) throw new Error(`${file}: section at byte ${start} runs past the end`);
    let name = null;
    if (id === 0) {
      const [len, nameAt] = uleb(bytes, body);
      name = bytes.subarray(nameAt, nameAt + len).toString('utf8');
    }
    if (name === 'name') dropped += end - start;
    else kept.push(bytes.subarray(start, end));
    at = end;
  }
  if (dropped) {
    writeFileSync(`${file}.tmp`, Buffer.concat(kept));
    renameSync(`${file}.tmp`, file);
  }
  console.log(`${file}: removed ${dropped} bytes of function names`);
}
