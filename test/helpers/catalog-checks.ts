import assert from 'node:assert/strict';
import { verifyCatalog } from '../../src/store/catalog-verify.ts';

/** `sidx verify`'s checks pass on the catalog in `dir` (store/catalog-verify.ts). */
export async function assertCatalogVerifies(dir: string): Promise<void> {
  const report = await verifyCatalog(dir);
  assert.ok(report.ok, report.problems.join('\n'));
}
