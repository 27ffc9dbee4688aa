// Runs tuf-js's client (a standard TUF implementation) against a repository folder it serves
// itself on 127.0.0.1 (REPO_DIR/metadata/, REPO_DIR/targets/): trusts ROOT_FILE, refreshes (root
// rotation, timestamp, snapshot, targets), then finds and downloads each TARGET (delegation
// search, length and hash checks). Exit status 0 only if all of it verified; every step is
// printed.
//
// Usage: node verify-with-tuf-js.mjs REPO_DIR ROOT_FILE WORK_DIR TARGET...
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, normalize } from 'node:path';
import { Updater } from 'tuf-js';

const [repoDir, rootFile, work, ...targetNames] = process.argv.slice(2);
if (targetNames.length === 0) {
  console.error('usage: node verify-with-tuf-js.mjs REPO_DIR ROOT_FILE WORK_DIR TARGET...');
  process.exit(2);
}

// A static file server for the repository folder (404 for anything missing).
const server = createServer((request, response) => {
  const path = normalize(decodeURIComponent(new URL(request.url, 'http://x').pathname));
  try {
    if (path.includes('..')) throw new Error('outside the repository');
    const body = readFileSync(join(repoDir, path));
    response.writeHead(200, { 'Content-Length': body.length });
    response.end(body);
  } catch {
    response.writeHead(404);
    response.end();
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;
const metadataBaseUrl = `${base}/metadata/`;
const targetBaseUrl = `${base}/targets/`;
const metadataDir = join(work, 'metadata');
const targetDir = join(work, 'targets');
mkdirSync(metadataDir, { recursive: true });
mkdirSync(targetDir, { recursive: true });
copyFileSync(rootFile, join(metadataDir, 'root.json'));

try {
  const updater = new Updater({ metadataDir, metadataBaseUrl, targetBaseUrl, targetDir });
  await updater.refresh();
  const root = JSON.parse(readFileSync(join(metadataDir, 'root.json'), 'utf8')).signed;
  const keytypes = Object.fromEntries(Object.entries(root.roles).map(
    ([name, role]) => [name, role.keyids.map((id) => root.keys[id].keytype).join('+')]));
  console.log(`tuf-js: refresh verified: root version ${root.version}, key types ${JSON.stringify(keytypes)}`);
  for (const name of targetNames) {
    const info = await updater.getTargetInfo(name);
    if (!info) throw new Error(`target ${name} not found by the delegation search`);
    const path = await updater.downloadTarget(info, join(targetDir, encodeURIComponent(name)));
    console.log(`tuf-js: target ${name} verified (${info.length} bytes) -> ${path}`);
  }
  console.log('tuf-js: all verified');
  server.close();
} catch (e) {
  console.error(`tuf-js: FAILED: ${e.constructor.name}: ${e.message}`);
  process.exit(1);
}
