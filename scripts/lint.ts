/**
 * Project lint: module dependency direction (DESIGN.md: http -> service -> tokenizer/sid/store/vector) and
 * file size. Exits 1 listing every violation.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const src = join(root, 'src');
const MAX_LINES = 400;

/** Which top-level modules each module may import. Files directly in src/ (errors, config) are shared. */
const allowed: Record<string, string[]> = {
  http: ['service'],
  service: ['tokenizer', 'sid', 'store', 'vector'],
  tokenizer: ['numeric', 'io'],
  sid: [],
  store: ['sid', 'vector'],
  vector: [],
  numeric: ['vector'],
  train: ['numeric', 'vector', 'io', 'sid', 'tokenizer', 'store'],
  eval: ['service', 'train', 'numeric', 'vector', 'io', 'sid', 'tokenizer', 'store'],
  io: [],
  bench: ['eval', 'train', 'tokenizer', 'vector', 'io'],
  cluster: ['service', 'tokenizer', 'sid'],
  cli: ['http', 'service', 'cluster', 'tokenizer', 'sid', 'store', 'vector', 'numeric', 'train', 'eval', 'bench', 'io'],
};

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (/\.(ts|mjs|js)$/.test(name)) yield p;
  }
}

const problems: string[] = [];
for (const file of files(src)) {
  const rel = relative(src, file);
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n').length;
  if (lines > MAX_LINES) problems.push(`${rel}: ${lines} lines (limit ${MAX_LINES}): split it`);
  const mod = rel.includes('/') ? rel.split('/')[0]! : null;
  if (!mod) continue;
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
    const target = relative(src, resolve(dirname(file), m[1]!));
    if (target.startsWith('..')) continue;
    const targetMod = target.includes('/') ? target.split('/')[0]! : null;
    if (!targetMod || targetMod === mod) continue;
    if (!(allowed[mod] ?? []).includes(targetMod)) problems.push(`${rel}: imports ${target} (${mod} -> ${targetMod} is not allowed)`);
  }
}
if (problems.length > 0) {
  console.error(`lint: ${problems.length} problem(s)\n${problems.join('\n')}`);
  process.exit(1);
}
console.log('lint: module boundaries and file sizes ok');
