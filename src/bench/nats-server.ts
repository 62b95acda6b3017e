/** A local `nats-server -js` on a free loopback port, for the cluster tests and bench/cluster.bench.ts. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';

/** Why cluster tests cannot run here (nats-server missing), or false. */
export const natsServerMissing = (): string | false =>
  (spawnSync('nats-server', ['--version']).error ? 'nats-server is not installed (scripts/setup.sh installs it)' : false);

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Starts nats-server with JetStream storing in `storeDir`; resolves once it accepts connections (10 s at most). */
export async function startNatsServer(storeDir: string): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => (s.end(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (up) return { child, url: `nats://127.0.0.1:${port}` };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('nats-server did not accept connections within 10 s');
}
