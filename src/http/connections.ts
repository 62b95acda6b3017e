/**
 * Connection limits and shutdown (issue 14). A request must arrive whole (headers and body) within
 * `server.requestTimeoutMs`, else Node answers 408 and closes the connection; an idle keep-alive connection closes
 * after `server.keepAliveTimeoutMs`. On close (SIGTERM): the port stops listening (new connections are refused),
 * idle keep-alive connections are closed, a request whose body is still arriving is cut (its connection closed:
 * nothing was done for it), requests in flight finish and each answer closes its connection. A request pipelined
 * behind one in flight is refused (SIDX_ERR_NOT_READY) without running, and node:http drops that answer when the
 * connection closes after the first: so no client sees a 503 for the shutdown (README says so). And which client
 * connections the last requests came over (one client, or several, for the service's lone path).
 */
import type { ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { Config } from '../config.ts';
import { SidxError } from '../errors.ts';

/** Fastify (and node:http) options for the configured timeouts. */
type ConnectionOptions = Pick<FastifyServerOptions, 'requestTimeout' | 'keepAliveTimeout' | 'return503OnClosing'> & { http: ServerOptions };

export function connectionOptions(server: Config['server']): ConnectionOptions {
  const requestTimeout = server.requestTimeoutMs;
  return {
    requestTimeout,
    keepAliveTimeout: server.keepAliveTimeoutMs,
    return503OnClosing: false, // the onRequest hook below refuses those requests in the API's error shape
    http: {
      requestTimeout,
      // node:http refuses a headersTimeout above requestTimeout; its default is 60 s.
      headersTimeout: requestTimeout > 0 ? Math.min(60_000, requestTimeout) : 60_000,
      // How often node:http looks for requests past those limits (its default, 30 s, would stretch short ones).
      connectionsCheckingInterval: requestTimeout > 0 ? Math.min(30_000, Math.max(10, Math.ceil(requestTimeout / 4))) : 30_000,
    },
  };
}

/** The last requests' connections the app remembers, how recent they must be, and how many make "several clients". */
const RECENT_REQUESTS = 8;
const RECENT_MS = 100;
const SEVERAL = 3;

/** Per connection: its client (`address:port`, found once) and the response its latest request is answered with. */
const kPeer = Symbol('sidx.peer');
const kAnswering = Symbol('sidx.answering');
type TrackedSocket = Socket & { [kPeer]?: string; [kAnswering]?: ServerResponse };

/**
 * The app's connection handling, in one onRequest hook (every request pays for each hook it runs) and a set of the
 * open connections. On close (SIGTERM) the connections are walked once: a request whose body is still arriving is
 * cut, a request in flight is told to close its connection with its answer; requests that arrive after the close
 * began are refused. Returns whether the last requests came over several client connections: the last
 * RECENT_REQUESTS requests within RECENT_MS came over at least SEVERAL connections (remote address and port;
 * `inject` has one). One client's sequential requests do not count as several, even from Node's fetch, which
 * takes turns on two connections; a load of many clients does; a monitoring connection adds one.
 */
export function registerConnections(app: FastifyInstance): () => boolean {
  const from: string[] = new Array<string>(RECENT_REQUESTS).fill('');
  const at = new Float64Array(RECENT_REQUESTS).fill(-Infinity);
  let next = 0;
  let closing = false;
  const open = new Set<TrackedSocket>();
  app.server.on('connection', (socket: TrackedSocket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  app.addHook('onRequest', (req, reply, done) => {
    if (closing) return done(new SidxError('SIDX_ERR_NOT_READY', 'the server is shutting down'));
    const socket: TrackedSocket = req.raw.socket;
    socket[kAnswering] = reply.raw;
    from[next] = socket[kPeer] ??= `${socket.remoteAddress}:${socket.remotePort}`;
    at[next] = performance.now();
    next = (next + 1) % RECENT_REQUESTS;
    done();
  });
  app.addHook('preClose', async () => {
    closing = true;
    for (const socket of open) {
      const res = socket[kAnswering];
      if (res === undefined || res.writableFinished) continue; // idle: the server's close ends it
      if (!res.req.complete) socket.destroy(); // its body is still arriving: nothing was done for it
      // Graceful close: the answer closes its keep-alive connection; otherwise app.close() would wait for that
      // client until keepAliveTimeout before the stores could close.
      else if (!res.headersSent) res.setHeader('connection', 'close');
    }
  });
  return () => {
    const since = performance.now() - RECENT_MS;
    let distinct = 0;
    for (let i = 0; i < RECENT_REQUESTS; i++) {
      if (at[i]! < since) continue;
      let seen = false;
      for (let j = 0; j < i && !seen; j++) seen = at[j]! >= since && from[j] === from[i];
      if (!seen && ++distinct >= SEVERAL) return true;
    }
    return false;
  };
}
