// Writes a TUF repository made with @tufjs/models (the metadata models of tuf-js, a standard TUF
// implementation) into a folder, for ota-agent's client to read as test vectors:
//   metadata/1.root.json 2.root.json   root 1, and root 2 with a rotated root key (signed by both)
//   metadata/timestamp.json 1.snapshot.json 1.targets.json 1.releases.json
//   targets/HASH.FILE                  every target under its sha256 and its sha512 prefix
// Keys are Ed25519, the models' and python-tuf's default; metadata is signed over canonical JSON
// (@tufjs/canonical-json); snapshot and timestamp list versions only, as python-tuf writes them.
//
// Usage: node make-tufjs-repository.mjs OUT_DIR   (after `npm install` in this folder)
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canonicalize } from '@tufjs/canonical-json';
import models from '@tufjs/models';

// Roles and delegations are not exported on their own: those parts are made through fromJSON.
const { Metadata, MetaFile, Root, Signature, Snapshot, TargetFile, Targets, Timestamp } = models;

const out = process.argv[2];
if (!out) {
  console.error('usage: node make-tufjs-repository.mjs OUT_DIR');
  process.exit(1);
}
const SPEC = '1.0.31';
const EXPIRES = '2100-01-01T00:00:00Z'; // vectors that do not expire

const sha = (alg, data) => createHash(alg).update(data).digest('hex');

// An Ed25519 key: the TUF key object (public key as hex) and a signer for Metadata.sign.
function newKey() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const json = { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: raw.toString('hex') } };
  const keyID = sha('sha256', canonicalize(json));
  const signer = (data) => new Signature({ keyID, sig: sign(null, data, privateKey).toString('hex') });
  return { json, keyID, signer };
}

function write(path, text) {
  mkdirSync(dirname(join(out, path)), { recursive: true });
  writeFileSync(join(out, path), text);
}

function publish(path, md) {
  const text = JSON.stringify(md.toJSON(), null, 2) + '\n';
  write(path, text);
  return text;
}

function addTarget(targets, path, content) {
  const data = Buffer.from(content);
  const hashes = { sha256: sha('sha256', data), sha512: sha('sha512', data) };
  targets.addTarget(new TargetFile({ path, length: data.length, hashes }));
  const slash = path.lastIndexOf('/');
  for (const hash of Object.values(hashes))
    write(join('targets', path.slice(0, slash + 1) + hash + '.' + path.slice(slash + 1)), data);
}

const root1Key = newKey(), root2Key = newKey(), timestampKey = newKey(), snapshotKey = newKey();
const targetsKeys = [newKey(), newKey()];
const releasesKey = newKey();

// Root 1, then root 2 with the root key rotated: signed by the old and the new root key.
const keysOf = (list) => Object.fromEntries(list.map((k) => [k.keyID, k.json]));
const role = (list, threshold) => ({ keyids: list.map((k) => k.keyID), threshold });
const rootBody = (version, rootKey) => Root.fromJSON({
  _type: 'root', spec_version: SPEC, version, expires: EXPIRES, consistent_snapshot: true,
  keys: keysOf([rootKey, timestampKey, snapshotKey, ...targetsKeys]),
  roles: {
    root: role([rootKey], 1),
    timestamp: role([timestampKey], 1),
    snapshot: role([snapshotKey], 1),
    targets: role(targetsKeys, 2),
  },
});
const root1 = new Metadata(rootBody(1, root1Key));
root1.sign(root1Key.signer);
publish('metadata/1.root.json', root1);
const root2 = new Metadata(rootBody(2, root2Key));
root2.sign(root1Key.signer);
root2.sign(root2Key.signer);
publish('metadata/2.root.json', root2);

// Targets (threshold 2) with one file and a delegation of releases/* to "releases".
const targets = Targets.fromJSON({
  _type: 'targets', spec_version: SPEC, version: 1, expires: EXPIRES, targets: {},
  delegations: {
    keys: keysOf([releasesKey]),
    roles: [{ name: 'releases', ...role([releasesKey], 1), terminating: true, paths: ['releases/*'] }],
  },
});
addTarget(targets, 'hello.txt', 'hello from a tuf-js repository\n');
const targetsMd = new Metadata(targets);
for (const k of targetsKeys) targetsMd.sign(k.signer);
publish('metadata/1.targets.json', targetsMd);

const releases = new Targets({ version: 1, specVersion: SPEC, expires: EXPIRES });

addTarget(releases, 'releases/app-1.0.bin', 'application 1.0, delegated\n');
const releasesMd = new Metadata(releases);
releasesMd.sign(releasesKey.signer);
publish('metadata/1.releases.json', releasesMd);

const snapshot = new Metadata(new Snapshot({
  version: 1, specVersion: SPEC, expires: EXPIRES,
  meta: {
    'targets.json': new MetaFile({ version: 1 }),
    'releases.json': new MetaFile({ version: 1 }),
  },
}));
snapshot.sign(snapshotKey.signer);
publish('metadata/1.snapshot.json', snapshot);

const timestamp = new Metadata(new Timestamp({
  version: 1, specVersion: SPEC, expires: EXPIRES, snapshotMeta: new MetaFile({ version: 1 }),
}));
timestamp.sign(timestampKey.signer);
publish('metadata/timestamp.json', timestamp);
console.log(`wrote a tuf-js repository (root 1 and 2, Ed25519 keys) to ${out}`);
