/** The `sidx` command: one subcommand per job. */
import { readFileSync } from 'node:fs';
import { isSidxError } from '../errors.ts';
import { repoPath } from '../paths.ts';
import { UsageError } from './args.ts';

type Command = (argv: string[]) => Promise<number>;

// Each command's modules load on use: a start of `sidx serve` does not compile the trainer, the CLI tools, the
// benchmark (autocannon, a devDependency) and the baselines.
const commands: Record<string, { run: Command; summary: string }> = {
  serve: { run: async (argv) => (await import('./serve.ts')).serveCommand(argv), summary: 'start the HTTP API' },
  openapi: { run: async (argv) => (await import('./openapi.ts')).openapiCommand(argv), summary: 'write the OpenAPI document generated from the route schemas' },
  train: { run: async (argv) => (await import('./train.ts')).trainCommand(argv), summary: 'train a tokenizer (RQ-KMeans, RQ-VAE or VQ-VAE) on an embedding file and write a model bundle' },
  encode: { run: async (argv) => (await import('./encode.ts')).encodeCommand(argv), summary: 'write the item -> SID table of an embedding file (CSV or JSONL)' },
  metrics: { run: async (argv) => (await import('./metrics.ts')).metricsCommand(argv), summary: 'SID quality metrics of model bundles and SID files, side by side' },
  index: { run: async (argv) => (await import('./bulk-index.ts')).indexCommand(argv), summary: 'bulk-load an embedding file into a catalog offline (the upsert path, with a progress line)' },
  keys: { run: async (argv) => (await import('./keys.ts')).keysCommand(argv), summary: 'create, list and revoke API keys (stored hashed in the control plane)' },
  bench: { run: async (argv) => (await import('./bench.ts')).benchCommand(argv), summary: 'speed of encode, upsert and retrieve vs PyTorch and FAISS baselines (bench.json + Markdown)' },
  eval: { run: async (argv) => (await import('./eval.ts')).evalCommand(argv), summary: 'retrieval quality of a model\'s SIDs on a data set vs exact search and IVF-Flat (report.json + .md + .svg)' },
  'eval-beams': { run: async (argv) => (await import('./eval-beams.ts')).evalBeamsCommand(argv), summary: 'FORGE HR@K of generated SID beams against the items users went on to interact with' },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `Usage: sidx <command> [flags]   (sidx <command> --help for its flags; sidx --version)\n\nCommands:\n${lines.join('\n')}`;
}

function version(): string {
  return (JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v') {
    console.log(version());
    return 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`sidx: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`sidx ${name}: ${err.message}`);
      return 2;
    }
    if (isSidxError(err)) {
      console.error(`sidx ${name}: ${err.message} [${err.code}]`);
      return 1;
    }
    throw err;
  }
}
