/** The options and the file layout of a compressed rerank storage (code-store.ts; its subclasses give the format). */

export interface CodeOptions {
  /** Candidates re-scored exactly from the slot file; 0 = the format's default. */
  rescore: number;
  /** Vectors the quantiser is trained on. */
  trainSize: number;
  /** Advise the codes' memory for transparent huge pages (config `vectors.hugePages`; default true). */
  hugePages?: boolean;
}

/** How a subclass lays out its file: `name` is the extension and the messages' prefix. */
export interface CodeFormat {
  name: string;
  magic: Buffer;
  /** The magics of earlier formats of the same store, each refused with a message saying what it lacks (`what`). */
  former?: Array<{ magic: Buffer; what: string }>;
  /** Code bytes per vector. */
  codeSize: number;
  /** The u32 after dim in the header; a file with another one is refused (the owner rebuilds it). */
  param: number;
  /** What `param` is, for that refusal's message (e.g. "sub-quantizers"). */
  paramName: string;
  /** Bytes of the quantiser after the 16-byte prefix. */
  payloadBytes: number;
  /** Fewest vectors training needs. */
  minTrain: number;
  /** Candidates re-scored when the options say 0. */
  defaultRescore: number;
  /** How exact scores read the vector file: through the mapping, or pread (code-store.ts). */
  rescoreFrom: 'map' | 'read';
}
