import { writeFileSync } from 'node:fs';
import { renderOpenApi } from '../http/app.ts';
import { loadConfig } from '../config.ts';
import { parseFlags } from './args.ts';

const usage = 'Usage: sidx openapi [--out FILE]   (prints to stdout without --out)';

export async function openapiCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { out: { type: 'string' } }, usage);
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const doc = await renderOpenApi(loadConfig({}, {}));
  if (values.out) writeFileSync(values.out, doc);
  else process.stdout.write(doc);
  return 0;
}
