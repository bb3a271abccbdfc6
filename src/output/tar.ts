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

function octal(header: Buffer, offset: number, width: number, value: number): void {
  header.write(value.toString(8).padStart(width - 1, '0') + '\0', offset, width, 'ascii');
}

/** True for a name a member can have here: 1–100 printable ASCII characters (ustar's name field, no prefix). */
export function isTarMemberName(name: string): boolean {
  return name.length > 0 && name.length <= 100 && /^[\x21-\x7e]+$/.test(name);
}

/** A regular file's 512-byte header (mode 0644, owner 0:0). `name` is ASCII, at most 100 bytes. */
export function tarHeader(name: string, size: number, mtimeSeconds: number): Buffer {
  if (!isTarMemberName(name)) throw new Error(`tar member name ${JSON.stringify(name.slice(0, 120))} is not 1–100 printable ASCII characters`);
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_MEMBER_BYTES) throw new Error(`tar member ${name} has an invalid size ${size}`);
  const header = Buffer.alloc(BLOCK);
  header.write(name, 0, 100, 'ascii');
  octal(header, 100, 8, 0o644);
  octal(header, 108, 8, 0);
  octal(header, 116, 8, 0);
  octal(header, 124, 12, size);
  octal(header, 136, 12, Math.max(0, Math.floor(mtimeSeconds)));
  header.write(' '.repeat(8), 148, 8, 'ascii');
  header.write('0', 156, 1, 'ascii');
  header.write('ustar\0', 257, 6, 'ascii');
  header.write('00', 263, 2, 'ascii');
  octal(header, 329, 8, 0);
  octal(header, 337, 8, 0);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return header;
}

/** One member: header, body, and the zeros that pad the body to a whole block. */
export function tarMember(name: string, body: Buffer, mtimeSeconds: number): Buffer[] {
  const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
  const parts = [tarHeader(name, body.length, mtimeSeconds), body];
  if (pad > 0) parts.push(ZEROS.subarray(0, pad));
  return parts;
}
