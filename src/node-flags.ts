/**
 * The V8 flags `sidx serve` runs with, wherever it is started: bin/sidx.js's shebang (`npx sidx`, `./bin/sidx.js`),
 * `npm start` and the Dockerfile (test/cli/node-flags.test.ts checks that they agree); `sidx bench` starts its server
 * with them too. Young-generation semi-spaces of 32 MiB instead of V8's 16: an upsert batch keeps its per-item objects
 * (ids, views, keys, SIDs, postings to publish) from the body's parse to its commit, about 100 ms, and with the
 * default size several scavenges copy them meanwhile. 1M items, 2 batches in flight: server CPU 57.6-57.9 s against
 * 62.0-62.7 s without (docs/benchmarks.md, "Where it stands (stop 26)"); retrieves and `sidx index` did not change.
 *
 * An old generation of at least 128 MiB before V8 sizes it from what survives: V8 starts marking once the old
 * generation's headroom falls below the young generation's capacity, and with 32 MiB semi-spaces over a live old
 * generation of ~26 MiB (a 100K catalog) that headroom was 40-43 MiB, so under retrieve load it could run a
 * mark-compact every ~110 ms (47-68 in 8 s at 32 connections, with fewer answers and twice the p99). Fewer ArrayBuffers
 * per retrieve (service/candidate-set.ts's pool) ended those storms in the bench; this flag keeps the headroom wide
 * while the old generation is small (docs/benchmarks.md, "Where it stands (stop 35)").
 */
export const SERVE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32', '--initial-old-space-size=128'];
