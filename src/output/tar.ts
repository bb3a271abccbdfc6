/**
 * POSIX ustar members, as buffers to write in one go. tar-stream (which reads our tars in the
 * tests) pushed every member through two streams and wrote header, body and padding as separate
 * file writes (at 100 open shards, file writes were ~10% of the coordinator's busy time). Here a
 * sample's three members become one writev, and the bytes are the same format GNU tar and
 * tar-stream read (tests/output-writer.test.ts checks with both).
 */

const BLOCK = 512;
const ZEROS = Buffer.alloc(2 * BLOCK);
/** The end of an archive: two zero blocks. */
export const TAR_END: Buffer = ZEROS;
/** ustar's size field: 11 octal digits. */
const MAX_MEMBER_BYTES = 8 ** 11 - 1;

/** Writes `value` as `width - 1` zero-padded octal digits and a NUL; returns the sum of the bytes written. */
function octal(header: Buffer, offset: number, width: number, value: number): number {
  let sum = 0;
  let v = value;
  for (let i = offset + width - 2; i >= offset; i--) {
    const digit = 48 + (v % 8);
    header[i] = digit;
    sum += digit;
    v = Math.floor(v / 8);
  }
  header[offset + width - 1] = 0;
  return sum;
}

/**
 * What every member's header shares (mode 0644, owner 0:0, a regular file, ustar magic, the
 * checksum field as the spaces it is summed as), and its byte sum: a header is a copy of it with
 * the name, size and mtime written in, its checksum the template's sum plus theirs.
 */
const TEMPLATE = Buffer.alloc(BLOCK);
const TEMPLATE_SUM = ((): number => {
  octal(TEMPLATE, 100, 8, 0o644);
  octal(TEMPLATE, 108, 8, 0);
  octal(TEMPLATE, 116, 8, 0);
  TEMPLATE.write(' '.repeat(8), 148, 8, 'ascii');
  TEMPLATE.write('0', 156, 1, 'ascii');
  TEMPLATE.write('ustar\0', 257, 6, 'ascii');
  TEMPLATE.write('00', 263, 2, 'ascii');
  octal(TEMPLATE, 329, 8, 0);
  octal(TEMPLATE, 337, 8, 0);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += TEMPLATE[i]!;
  return sum;
})();

/** True for a name a member can have here: 1–100 printable ASCII characters (ustar's name field, no prefix). */
export function isTarMemberName(name: string): boolean {
  return name.length > 0 && name.length <= 100 && /^[\x21-\x7e]+$/.test(name);
}

/** A regular file's 512-byte header (mode 0644, owner 0:0). `name` is ASCII, at most 100 bytes. */
export function tarHeader(name: string, size: number, mtimeSeconds: number): Buffer {
  if (!isTarMemberName(name)) throw new Error(`tar member name ${JSON.stringify(name.slice(0, 120))} is not 1–100 printable ASCII characters`);
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_MEMBER_BYTES) throw new Error(`tar member ${name} has an invalid size ${size}`);
  // Written byte by byte into a copy of the template: this runs three times per kept pair.
  const header = Buffer.allocUnsafe(BLOCK);
  TEMPLATE.copy(header);
  let sum = TEMPLATE_SUM;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    header[i] = c;
    sum += c;
  }
  sum += octal(header, 124, 12, size);
  sum += octal(header, 136, 12, Math.max(0, Math.floor(mtimeSeconds)));
  // The checksum field: six octal digits, a NUL and a space.
  octal(header, 148, 7, sum);
  header[155] = 32;
  return header;
}

/** One member: header, body, and the zeros that pad the body to a whole block. */
export function tarMember(name: string, body: Buffer, mtimeSeconds: number): Buffer[] {
  const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
  const parts = [tarHeader(name, body.length, mtimeSeconds), body];
  if (pad > 0) parts.push(ZEROS.subarray(0, pad));
  return parts;
}
