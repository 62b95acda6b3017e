/** The report phase of a re-index (reindex-job.ts): how many items changed SID, and the optional mapping file. */
import { createWriteStream, mkdirSync, renameSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { dirname } from 'node:path';
import type { Catalog } from '../store/catalog.ts';
import type { Stability } from './job-view.ts';

const sidText = (codes: Int32Array | undefined) => (codes ? Array.from(codes).join('-') : '');
const csvField = (id: string) => (/[",\r\n]/.test(id) ? `"${id.replace(/"/g, '""')}"` : id);

/**
 * Compares every item's SID in key space `from` with its SID in `to`, writing `mappingFile` (CSV: id,old_sid,new_sid;
 * through a .tmp renamed when complete) if given; null when `stopping` turned true first.
 */
export async function compareSids(catalog: Catalog, from: number, to: number, mappingFile: string | null, stopping: () => boolean): Promise<Stability | null> {
  const stability: Stability = { compared: 0, changed: 0, unchanged: 0, missing: 0 };
  let out: WriteStream | null = null;
  if (mappingFile) {
    mkdirSync(dirname(mappingFile), { recursive: true });
    out = createWriteStream(`${mappingFile}.tmp`);
    out.write('id,old_sid,new_sid\n');
  }
  let after = 0n;
  for (;;) {
    if (stopping()) {
      out?.destroy();
      return null;
    }
    const pairs = catalog.spaces.sidPairsAfter(after, 10_000, from, to);
    if (pairs.length === 0) break;
    const lines: string[] = [];
    for (const pair of pairs) {
      if (!pair.b) stability.missing++;
      else if (pair.a) {
        stability.compared++;
        if (sidText(pair.a) === sidText(pair.b)) stability.unchanged++;
        else stability.changed++;
      }
      if (out) lines.push(`${csvField(pair.id)},${sidText(pair.a)},${sidText(pair.b)}\n`);
    }
    if (out && !out.write(lines.join(''))) await once(out, 'drain');
    after = pairs.at(-1)!.key;
    await new Promise((r) => setTimeout(r, 0)); // let requests in between passes over large catalogs
  }
  if (out && mappingFile) {
    out.end();
    await once(out, 'finish');
    renameSync(`${mappingFile}.tmp`, mappingFile);
  }
  return stability;
}
