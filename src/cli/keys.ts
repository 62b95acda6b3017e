/**
 * `sidx keys create|list|revoke`: API keys in the control plane of a data directory (the same SQLite file a
 * running `sidx serve` uses; WAL lets both write, and the server checks keys per request, so a new or revoked
 * key takes effect at once).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig } from '../config.ts';
import { SidxError } from '../errors.ts';
import { KEY_SCOPES, type KeyScope } from '../store/api-keys.ts';
import { ControlPlane, MIGRATIONS_DIR } from '../store/control-plane.ts';
import { parseFlags, UsageError } from './args.ts';

export const keysUsage = `Usage: sidx keys create --name NAME [--scope read|write|admin] [--data-dir DIR]
       sidx keys list [--data-dir DIR] [--json]
       sidx keys revoke ID [--data-dir DIR]

API keys for the HTTP API (auth.mode writes|all). \`create\` prints the key once on stdout: only its SHA-256 is
stored. Scopes: read (encode, retrieve, item lookups), write (read + item upserts and deletes), admin (everything:
models, re-index, jobs). Default scope: write. --data-dir defaults to SIDX__STORAGE__DATA_DIR, else ./data; \`create\`
makes it if missing (keys before a first start), \`list\` and \`revoke\` refuse a directory sidx has not used.`;

export async function keysCommand(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  if (action === undefined || action === '--help' || action === '-h') {
    console.log(keysUsage);
    return action === undefined ? 2 : 0;
  }
  const positional = rest[0] !== undefined && !rest[0].startsWith('-') ? rest.shift() : undefined;
  const { values } = parseFlags(rest, {
    name: { type: 'string' }, scope: { type: 'string' }, 'data-dir': { type: 'string' }, json: { type: 'boolean' },
  }, keysUsage);
  if (values.help) {
    console.log(keysUsage);
    return 0;
  }
  const dataDir = resolve(loadConfig({ storage: { dataDir: values['data-dir'] } }).storage.dataDir);
  const file = join(dataDir, 'control.sqlite');
  // Keys may be created before the first start (a router's data directory, say); list and revoke on a directory sidx
  // never used are a wrong --data-dir, which they must not create.
  const open = (create = false) => {
    if (create) mkdirSync(dataDir, { recursive: true });
    else if (!existsSync(file)) {
      const what = existsSync(dataDir) ? `${dataDir} holds no control plane (control.sqlite): no sidx serve or sidx keys create used it`
        : `data directory ${dataDir} does not exist`;
      throw new SidxError('SIDX_ERR_CONFIG', `${what}; check --data-dir (or SIDX__STORAGE__DATA_DIR)`, { field: 'storage.dataDir' });
    }
    return ControlPlane.open(file, MIGRATIONS_DIR);
  };
  switch (action) {
    case 'create': {
      if (values.name === undefined) throw new UsageError(`--name is required\n\n${keysUsage}`);
      const scope = (values.scope ?? 'write') as KeyScope;
      if (!KEY_SCOPES.includes(scope)) throw new UsageError(`--scope must be one of ${KEY_SCOPES.join(', ')}`);
      const control = open(true);
      try {
        const created = control.keys.create(values.name, scope);
        console.log(created.key);
        console.error(`sidx keys: created key ${created.id} (${created.name}, scope ${created.scope}); it is shown only now`);
      } finally {
        control.close();
      }
      return 0;
    }
    case 'list': {
      const control = open();
      try {
        const keys = control.keys.list();
        if (values.json) console.log(JSON.stringify(keys, null, 2));
        else {
          console.log(['id', 'scope', 'created', 'revoked', 'name'].join('\t'));
          for (const k of keys) console.log([k.id, k.scope, k.createdAt, k.revokedAt ?? '-', k.name].join('\t'));
        }
      } finally {
        control.close();
      }
      return 0;
    }
    case 'revoke': {
      if (positional === undefined) throw new UsageError(`revoke needs the key id\n\n${keysUsage}`);
      const control = open();
      try {
        if (!control.keys.revoke(positional)) {
          console.error(`sidx keys: no key ${JSON.stringify(positional)}`);
          return 1;
        }
        console.error(`sidx keys: revoked ${positional}`);
      } finally {
        control.close();
      }
      return 0;
    }
    default:
      throw new UsageError(`unknown action ${JSON.stringify(action)}\n\n${keysUsage}`);
  }
}
