#!/usr/bin/env -S node --max-semi-space-size=32
// Entry point of the `sidx` command: registers tsx so the TypeScript sources run as they are.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
