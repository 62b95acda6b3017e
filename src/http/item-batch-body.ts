/**
 * A fast path of the JSON body parser (json-body.ts) for the body of an upsert batch as clients send it,
 * `{"items": [{"id": "...", "embedding": "<base64>"}, ...]}`: megabytes of base64 in which JSON.parse spends its time
 * on a UTF-8 decode of the whole text and a scan of every string. Here native `indexOf` finds each string's end and
 * each string is copied out alone. The result is the object JSON.parse would build, property order included; any
 * body of another shape, or holding a byte the fast path does not judge (the caller passes ASCII bodies without
 * backslashes only), gets undefined and goes to the general parser.
 *
 * One difference, on refused input only: a raw control character inside an embedding string (invalid JSON) is not
 * looked for; the string then fails the embedding decoder's canonical-base64 check (embedding-input.ts), so the batch
 * is still refused with a 400 naming the field, and nothing is written.
 */

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
/** The smallest byte JSON allows unescaped inside a string. */
const FIRST_PLAIN = 0x20;

const KEY_ITEMS = Buffer.from('"items"');
const KEY_ID = Buffer.from('"id"');
const KEY_EMBEDDING = Buffer.from('"embedding"');

export interface ItemBatchBody {
  items: Array<{ id: string; embedding: string }>;
}

/** The parsed batch, or undefined when `body` (ASCII, no backslash) is not of the fast path's shape. */
export function parseItemBatchBody(body: Buffer): ItemBatchBody | undefined {
  const s = new Scanner(body);
  if (!s.take(LBRACE) || !s.takeKey(KEY_ITEMS) || !s.take(LBRACKET)) return undefined;
  const items: ItemBatchBody['items'] = [];
  if (!s.take(RBRACKET)) {
    do {
      const item = s.item();
      if (item === undefined) return undefined;
      items.push(item);
    } while (s.take(COMMA));
    if (!s.take(RBRACKET)) return undefined;
  }
  return s.take(RBRACE) && s.atEnd() ? { items } : undefined;
}

class Scanner {
  readonly #b: Buffer;
  #p = 0;

  constructor(body: Buffer) {
    this.#b = body;
  }

  /** Skips whitespace, then consumes `byte` if it comes next. */
  take(byte: number): boolean {
    this.#skipSpace();
    if (this.#b[this.#p] !== byte) return false;
    this.#p++;
    return true;
  }

  /** Consumes `"key"` and the colon after it. */
  takeKey(key: Buffer): boolean {
    this.#skipSpace();
    const end = this.#p + key.length;
    if (end > this.#b.length || this.#b.compare(key, 0, key.length, this.#p, end) !== 0) return false;
    this.#p += key.length;
    return this.take(COLON);
  }

  atEnd(): boolean {
    this.#skipSpace();
    return this.#p === this.#b.length;
  }

  /** `{"id": "...", "embedding": "..."}`, the two keys once each, in either order. */
  item(): { id: string; embedding: string } | undefined {
    if (!this.take(LBRACE)) return undefined;
    const idFirst = this.takeKey(KEY_ID);
    if (!idFirst && !this.takeKey(KEY_EMBEDDING)) return undefined;
    const first = idFirst ? this.#idString() : this.#string();
    if (first === undefined || !this.take(COMMA) || !this.takeKey(idFirst ? KEY_EMBEDDING : KEY_ID)) return undefined;
    const second = idFirst ? this.#string() : this.#idString();
    if (second === undefined || !this.take(RBRACE)) return undefined;
    return idFirst ? { id: first, embedding: second } : { embedding: first, id: second };
  }

  /** A string whose every byte is checked for what JSON refuses in a string (ids are short). */
  #idString(): string | undefined {
    const start = this.#p + 1;
    const value = this.#string();
    if (value === undefined) return undefined;
    for (let i = start; i < this.#p - 1; i++) if (this.#b[i]! < FIRST_PLAIN) return undefined;
    return value;
  }

  #string(): string | undefined {
    this.#skipSpace();
    if (this.#b[this.#p] !== QUOTE) return undefined;
    const end = this.#b.indexOf(QUOTE, this.#p + 1);
    if (end < 0) return undefined;
    const value = this.#b.toString('latin1', this.#p + 1, end);
    this.#p = end + 1;
    return value;
  }

  #skipSpace(): void {
    const b = this.#b;
    let p = this.#p;
    for (let c = b[p]; c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = b[++p]);
    this.#p = p;
  }
}
