/**
 * TypeBox's runtime (`Type`, `Value`) from its CommonJS build. Under tsx (bin/sidx.js) every ES module is resolved
 * and loaded through the loader hooks' thread: TypeBox's ESM build is ~250 small modules, ~150 ms of each
 * `sidx serve` start; its CommonJS build loads through `require`, in this thread, in ~60 ms. Both builds mark
 * schemas with the same registered symbols (`Symbol.for('TypeBox.Kind')`). Types come from '@sinclair/typebox'
 * (`import type`, erased).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const { Type } = require('@sinclair/typebox') as typeof import('@sinclair/typebox');
export const { Value } = require('@sinclair/typebox/value') as typeof import('@sinclair/typebox/value');
