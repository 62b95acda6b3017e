/** Base64 facts shared by the readers of base64 embeddings (http/embedding-input.ts, io/algr-csv.ts). */

const PAD = 0x3d; // '='

/**
 * The bytes `text` decodes to if it is valid padded base64, from its length and its trailing '=' alone; -1 when
 * its length is not a positive multiple of 4. Node's decoder writes fewer when it skips characters outside the
 * alphabet or stops at a '=' inside, so a short write against this count means invalid base64.
 */
export function base64ByteLength(text: string): number {
  const len = text.length;
  if (len === 0 || len % 4 !== 0) return -1;
  const pads = text.charCodeAt(len - 1) === PAD ? (text.charCodeAt(len - 2) === PAD ? 2 : 1) : 0;
  return (len / 4) * 3 - pads;
}
