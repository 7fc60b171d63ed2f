/**
 * Raised by the wire-format encoder and decoder for anything outside
 * docs/protocol.md. Defined here rather than in actors/ so protocols/ stays a leaf
 * module; `code` matches the catalogue's EPROTOCOL so callers can switch on it.
 */
export class ProtocolError extends Error {
  readonly code = 'EPROTOCOL' as const;

  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}
