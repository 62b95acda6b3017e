/** `sidx serve`'s log destination: a reader that goes away stops the log, says so once on stderr, and the process goes on. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../helpers/paths.ts';

test('a closed log pipe: one line on stderr, no more writes, no failure', async () => {
  const module = pathToFileURL(join(repoRoot, 'src', 'cli', 'log-destination.ts')).href;
  const script = `const { syncDestination } = await import(${JSON.stringify(module)});
    const log = syncDestination(1);
    for (let i = 0; i < 1000; i++) log.write('a log line that nobody reads any more\\n');
    process.stderr.write('still running\\n');`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, stderr);
  assert.equal(stderr.match(/the log's reader closed its end \(fd 1: EPIPE\); the server goes on without a log/g)?.length, 1, stderr);
  assert.match(stderr, /still running\n$/);
});
