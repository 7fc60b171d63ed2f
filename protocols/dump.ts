/**
 * Canonical text dump of a message, the `.txt` half of each golden vector; the C
 * test (protocols/c/decode_test.c) prints the same format from the wire.
 *
 *   type=<lowercase type name>
 *   <lowercase tag name>=<value>     one line per field, in wire order
 *   <nest tag name>                  followed by its fields indented two spaces
 *
 * Integers are decimal (i32 signed, u32/u64 unsigned). Strings are double-quoted
 * UTF-8 bytes: printable ASCII stays, `"` and `\` get a backslash, every other byte
 * is `\xNN` (lowercase hex), so a dump is always one line per field and pure ASCII.
 * Raw bytes (`bytes` kind) are `hex:` followed by two lowercase hex digits per byte.
 */
import { Field } from './fields';
import { encode, messageFields } from './encode';
import { Message } from './messages';
import { tagName } from './schema';

export function quote(s: string): string {
  let out = '"';
  for (const b of Buffer.from(s, 'utf8')) {
    if (b === 0x22 || b === 0x5c) out += '\\' + String.fromCharCode(b);
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += '\\x' + b.toString(16).padStart(2, '0');
  }
  return out + '"';
}

function lines(fields: Field[], indent: string, out: string[]): void {
  for (const { tag, value } of fields) {
    const name = tagName(tag);
    if (Array.isArray(value)) {
      out.push(indent + name);
      lines(value, indent + '  ', out);
    } else if (Buffer.isBuffer(value)) {
      out.push(`${indent}${name}=hex:${value.toString('hex')}`);
    } else {
      out.push(`${indent}${name}=${typeof value === 'string' ? quote(value) : String(value)}`);
    }
  }
}

/** Dump of `msg` as encode() would lay it out (encode validates it first). */
export function dump(msg: Message): string {
  encode(msg);
  const out = [`type=${msg.type.toLowerCase()}`];
  lines(messageFields(msg), '', out);
  return out.join('\n') + '\n';
}
