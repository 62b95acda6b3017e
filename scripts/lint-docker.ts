/**
 * Docker lint (CI, offline; no Docker engine needed). Exits 1 listing every problem.
 *
 * Dockerfile: dockerfile-utils' validator (the one behind VS Code's Dockerfile support: instruction syntax,
 * flags, ports, HEALTHCHECK/CMD forms, ...; every diagnostic counts), then what this project requires of it:
 * a `gpu` target on an nvidia/cuda 12.x cuDNN runtime image and a `cpu` target, Node.js 22, the ORT CUDA 12
 * provider installed in the GPU build, a pinned NodeSource key, and in each runtime target a non-root USER,
 * the /data volume, a HEALTHCHECK on /readyz and STOPSIGNAL SIGTERM.
 *
 * docker-compose.yml: dclint (the Compose Specification JSON schema, then its best-practice rules, configured by
 * .dclintrc.json), then: a GPU service reserving an nvidia device and building the `gpu` target, a CPU-only
 * service behind the `cpu` profile, a named data volume, and every SIDX__* variable accepted by the service's
 * own configuration schema (so a typo fails here, not at start).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { validate } from 'dockerfile-utils';
import { DCLinter } from 'dclint';
import { parseDocument } from 'yaml';
import { loadConfig } from '../src/config.ts';

const root = resolve(import.meta.dirname, '..');
const problems: string[] = [];
const problem = (file: string, text: string) => problems.push(`${file}: ${text}`);

// --- Dockerfile -----------------------------------------------------------------------------------------
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
for (const d of validate(dockerfile)) problem('Dockerfile', `line ${d.range.start.line + 1}: ${d.message}`);

/** `from`: the image a stage starts from, through the earlier stages it builds on. */
interface Stage { name: string; from: string; body: string }
const args = new Map<string, string>();
for (const m of dockerfile.matchAll(/^ARG\s+([A-Z_]+)=(\S+)/gm)) if (!args.has(m[1]!)) args.set(m[1]!, m[2]!);
const expand = (s: string) => s.replace(/\$\{([A-Z_]+)\}/g, (_m, name: string) => args.get(name) ?? `\${${name}}`);
const stages: Stage[] = [];
const stage = (name: string) => stages.find((s) => s.name === name);
for (const part of dockerfile.split(/^(?=FROM\s)/m).slice(1)) {
  const m = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(part)!;
  const from = expand(m[1]!);
  stages.push({ name: m[2] ?? '', from: stage(from)?.from ?? from, body: part });
}
const gpu = stage('gpu');
const cpu = stage('cpu');
if (stages.length < 3) problem('Dockerfile', 'expected a multi-stage build (build stages + runtime targets)');
if (stages.at(-1)?.name !== 'gpu') problem('Dockerfile', 'the last stage (the default target) must be `gpu`');
if (!gpu) problem('Dockerfile', 'no `gpu` target');
else if (!/^nvidia\/cuda:12\.\d+(\.\d+)?-cudnn-runtime-ubuntu\d\d\.\d\d$/.test(gpu.from)) {
  problem('Dockerfile', `gpu target is FROM ${gpu.from}; expected nvidia/cuda:12.x-cudnn-runtime-ubuntuNN.NN (cuDNN 9)`);
}
if (!cpu) problem('Dockerfile', 'no `cpu` target');
if (args.get('NODE_MAJOR') !== '22' || !/^node:22[-.]/.test(args.get('NODE_IMAGE') ?? '')) problem('Dockerfile', 'Node.js 22 LTS expected (NODE_MAJOR, NODE_IMAGE)');
if (!/^[0-9A-F]{40}$/.test(args.get('NODESOURCE_KEY_FPR') ?? '') || !/--fingerprint[\s\S]*NODESOURCE_KEY_FPR/.test(dockerfile)) {
  problem('Dockerfile', 'the NodeSource key must be pinned by fingerprint and checked');
}
const gpuBuild = stages.find((s) => gpu && new RegExp(`--from=${s.name}\\b`).test(gpu.body) && /npm ci/.test(s.body));
if (!gpuBuild || !/ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci/.test(gpuBuild.body)) {
  problem('Dockerfile', 'the gpu target must copy from a build stage that runs ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci');
}
for (const s of [gpu, cpu]) {
  if (!s) continue;
  const user = /^USER\s+(\S+)/m.exec(s.body)?.[1];
  if (!user || user === 'root' || user === '0') problem('Dockerfile', `${s.name}: runs as root (add a non-root USER)`);
  if (!/^VOLUME\s+\[?"?\/data"?\]?/m.test(s.body)) problem('Dockerfile', `${s.name}: no VOLUME /data`);
  if (!/^HEALTHCHECK[\s\S]*?\/readyz/m.test(s.body)) problem('Dockerfile', `${s.name}: no HEALTHCHECK on /readyz`);
  if (!/^STOPSIGNAL\s+SIGTERM/m.test(s.body)) problem('Dockerfile', `${s.name}: STOPSIGNAL SIGTERM expected (graceful shutdown)`);
  if (!/SIDX__STORAGE__DATA_DIR=\/data/.test(s.body)) problem('Dockerfile', `${s.name}: SIDX__STORAGE__DATA_DIR must point at the volume`);
}
if (gpu && !/SIDX__ENCODER__PROVIDER=cuda/.test(gpu.body)) problem('Dockerfile', 'gpu: SIDX__ENCODER__PROVIDER=cuda expected');
const dockerEnv: Record<string, string> = {};
for (const s of [gpu, cpu]) {
  for (const m of s?.body.matchAll(/\b(SIDX__[A-Z_]+)=(\S+)/g) ?? []) dockerEnv[m[1]!] = m[2]!;
}
checkEnv('Dockerfile', dockerEnv);

// --- docker-compose.yml ---------------------------------------------------------------------------------
const composePath = join(root, 'docker-compose.yml');
const dclintConfig = JSON.parse(readFileSync(join(root, '.dclintrc.json'), 'utf8')) as { rules?: Record<string, unknown> };
const linter = new DCLinter({ rules: dclintConfig.rules ?? {}, quiet: false, debug: false, exclude: [] } as never);
for (const result of linter.lintFiles([composePath], false)) {
  for (const m of result.messages) problem('docker-compose.yml', `line ${m.line}: ${m.message} (${m.rule})`);
}
const doc = parseDocument(readFileSync(composePath, 'utf8'), { merge: true });
for (const e of doc.errors) problem('docker-compose.yml', e.message);
type Service = {
  build?: { target?: string }; profiles?: string[]; environment?: Record<string, unknown>; volumes?: string[];
  deploy?: { resources?: { reservations?: { devices?: Array<{ driver?: string; capabilities?: string[] }> } } };
};
const compose = (doc.toJS() ?? {}) as { services?: Record<string, Service>; volumes?: Record<string, unknown> };
const services = Object.entries(compose.services ?? {});
const gpuService = services.find(([, s]) => s.deploy?.resources?.reservations?.devices?.some((d) => d.driver === 'nvidia' && d.capabilities?.includes('gpu')));
if (!gpuService) problem('docker-compose.yml', 'no service reserves an nvidia GPU (deploy.resources.reservations.devices)');
else if (gpuService[1].build?.target !== 'gpu') problem('docker-compose.yml', `${gpuService[0]}: build.target gpu expected`);
const cpuService = services.find(([, s]) => s.profiles?.includes('cpu'));
if (!cpuService) problem('docker-compose.yml', 'no CPU-only service under the `cpu` profile');
else {
  if (cpuService[1].build?.target !== 'cpu') problem('docker-compose.yml', `${cpuService[0]}: build.target cpu expected`);
  if (cpuService[1].deploy?.resources?.reservations?.devices?.length) problem('docker-compose.yml', `${cpuService[0]}: the CPU profile must not reserve devices`);
}
for (const [name, s] of services) {
  const data = (s.volumes ?? []).find((v) => String(v).split(':')[1] === '/data');
  const volume = data?.split(':')[0];
  if (!volume || !compose.volumes || !(volume in compose.volumes)) problem('docker-compose.yml', `${name}: /data must be a named volume declared under volumes:`);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.environment ?? {})) env[k] = String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');
  checkEnv(`docker-compose.yml (${name})`, env);
}

// --- docker-compose.cluster.yml ---------------------------------------------------------------------------
// dclint, then: 3 NATS servers with JetStream, one router, every shard 0..S-1 with at least 2 replicas, every sidx
// node a /data named volume of its own, and each node's environment accepted by the config schema.
const clusterPath = join(root, 'docker-compose.cluster.yml');
for (const result of linter.lintFiles([clusterPath], false)) {
  for (const m of result.messages) problem('docker-compose.cluster.yml', `line ${m.line}: ${m.message} (${m.rule})`);
}
const clusterDoc = parseDocument(readFileSync(clusterPath, 'utf8'), { merge: true });
for (const e of clusterDoc.errors) problem('docker-compose.cluster.yml', e.message);
const cluster = (clusterDoc.toJS() ?? {}) as { services?: Record<string, Service & { image?: string; command?: string[] }>; volumes?: Record<string, unknown> };
const clusterServices = Object.entries(cluster.services ?? {});
const natsServers = clusterServices.filter(([, s]) => s.image?.startsWith('nats:'));
if (natsServers.length !== 3 || natsServers.some(([, s]) => !s.command?.includes('-js'))) problem('docker-compose.cluster.yml', '3 NATS servers with -js (JetStream) expected');
const replicas = new Map<string, number>();
const dataVolumes = new Set<string>();
let routers = 0;
for (const [name, s] of clusterServices.filter(([, x]) => !x.image?.startsWith('nats:'))) {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.environment ?? {})) env[k] = String(v);
  checkEnv(`docker-compose.cluster.yml (${name})`, env);
  const volume = (s.volumes ?? []).find((v) => String(v).split(':')[1] === '/data')?.split(':')[0];
  if (!volume || !cluster.volumes || !(volume in cluster.volumes) || dataVolumes.has(volume)) problem('docker-compose.cluster.yml', `${name}: /data must be a named volume of its own`);
  if (volume) dataVolumes.add(volume);
  if (env.SIDX__CLUSTER__ROLE === 'router') routers++;
  else if (env.SIDX__CLUSTER__ROLE === 'shard') replicas.set(env.SIDX__CLUSTER__SHARD ?? '0', (replicas.get(env.SIDX__CLUSTER__SHARD ?? '0') ?? 0) + 1);
  else problem('docker-compose.cluster.yml', `${name}: SIDX__CLUSTER__ROLE router or shard expected`);
}
const shardCount = Number(clusterServices.find(([, s]) => s.environment?.SIDX__CLUSTER__SHARDS)?.[1].environment?.SIDX__CLUSTER__SHARDS ?? 0);
if (routers < 1) problem('docker-compose.cluster.yml', 'no router');
for (let i = 0; i < shardCount; i++) if ((replicas.get(String(i)) ?? 0) < 2) problem('docker-compose.cluster.yml', `shard ${i}: fewer than 2 replicas`);

function checkEnv(file: string, env: Record<string, string>): void {
  const sidx = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('SIDX__')));
  try {
    loadConfig({}, sidx);
  } catch (err) {
    problem(file, (err as Error).message);
  }
}

if (problems.length > 0) {
  console.error(`lint:docker: ${problems.length} problem(s)\n${problems.join('\n')}`);
  process.exit(1);
}
console.log(`lint:docker: Dockerfile (${stages.length} stages: ${stages.map((s) => s.name).join(', ')}), docker-compose.yml (${services.length} services) and docker-compose.cluster.yml (${clusterServices.length} services) ok`);
