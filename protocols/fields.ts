/**
 * The untyped middle layer between bytes and `Message`: a field is a tag plus a
 * number, bigint, string, raw bytes (Buffer) or nested field list. encode.ts builds fields from a
 * message in canonical order, decode.ts builds a message from parsed fields, and
 * dump.ts prints them, so all three agree on one ordering.
 */
export type FieldValue = number | bigint | string | Buffer | Field[];

export interface Field {
  readonly tag: number;
  readonly value: FieldValue;
}

/**
 * Canonical order: ascending tag number; repeated tags keep list order (a stable
 * sort guarantees it). Golden vectors and the C writer follow this order.
 */
export function canonical(fields: Field[]): Field[] {
  return fields.slice().sort((a, b) => a.tag - b.tag);
}
