/**
 * API keys without a catalog: a cluster router (which holds no data) checks keys against the control plane in its
 * own data directory, the SQLite file `sidx keys create --data-dir DIR` writes (WAL: a new or revoked key takes
 * effect at once, as on a single node).
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ControlPlane, MIGRATIONS_DIR } from '../store/control-plane.ts';

export interface KeyStore {
  verifyKey(key: string): ReturnType<ControlPlane['keys']['verify']>;
  close(): void;
}

export function openKeyStore(dataDir: string): KeyStore {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const control = ControlPlane.open(join(dir, 'control.sqlite'), MIGRATIONS_DIR);
  return { verifyKey: (key) => control.keys.verify(key), close: () => control.close() };
}
