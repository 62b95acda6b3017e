/**
 * Text helpers for files written by Python tools: Python's `str.strip()` (whose whitespace differs from
 * `String.prototype.trim`: it strips \x1c..\x1f and U+0085 but keeps the BOM U+FEFF) and a description of the
 * invisible characters in a line, by code point, for error messages.
 */

/** Code points for which Python's `str.isspace()` is true (what `str.strip()` removes). */
const PY_SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

/** Python's `text.strip()`. */
export function pyStrip(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && PY_SPACE.test(text[start]!)) start++;
  while (end > start && PY_SPACE.test(text[end - 1]!)) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

const NAMES: Record<number, string> = {
  0x00: 'NUL', 0x09: 'tab', 0x0b: 'vertical tab', 0x0c: 'form feed', 0x0d: 'carriage return', 0x1c: 'file separator',
  0x1d: 'group separator', 0x1e: 'record separator', 0x1f: 'unit separator', 0x85: 'next line', 0xa0: 'no-break space',
  0xad: 'soft hyphen', 0x200b: 'zero-width space', 0x200c: 'zero-width non-joiner', 0x200d: 'zero-width joiner',
  0x2028: 'line separator', 0x2029: 'paragraph separator', 0x202f: 'narrow no-break space', 0x2060: 'word joiner',
  0x3000: 'ideographic space', 0xfeff: 'byte order mark',
};

/** Characters that do not show, or show as a plain space, in a terminal: controls (but tab), Unicode spaces, BOM. */
const INVISIBLE = /[\0-\x08\v-\x1f\x7f-\xa0\xad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]/g;

/**
 * "U+FEFF (byte order mark) at column 1, U+00A0 (no-break space) at column 12" for the first `max` invisible
 * characters of `text` (columns count UTF-16 units from 1), or '' when it has none.
 */
export function describeInvisible(text: string, max = 4): string {
  const found: string[] = [];
  let more = 0;
  for (const m of text.matchAll(INVISIBLE)) {
    if (found.length === max) {
      more++;
      continue;
    }
    const cp = m[0].charCodeAt(0);
    const name = NAMES[cp];
    found.push(`U+${cp.toString(16).toUpperCase().padStart(4, '0')}${name ? ` (${name})` : ''} at column ${m.index + 1}`);
  }
  if (more > 0) found.push(`${more} more`);
  return found.join(', ');
}
