/** Runs `sidx <argv>` in process, for CLI tests. */
import type { TestContext } from 'node:test';
import { main } from '../../src/cli/main.ts';

/** The exit code and what the command printed: console.log as stdout, console.error and stderr writes as stderr. */
export async function runCli(t: TestContext, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = t.mock.method(console, 'log', (...a: unknown[]) => void out.push(`${a.join(' ')}\n`));
  const error = t.mock.method(console, 'error', (...a: unknown[]) => void err.push(`${a.join(' ')}\n`));
  const write = t.mock.method(process.stderr, 'write', (chunk: unknown) => (err.push(String(chunk)), true));
  try {
    return { code: await main(argv), stdout: out.join(''), stderr: err.join('') };
  } finally {
    log.mock.restore();
    error.mock.restore();
    write.mock.restore();
  }
}
