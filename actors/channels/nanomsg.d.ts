// The npm `nanomsg` package ships no types; this declares the part paddock uses.
declare module 'nanomsg' {
  import { EventEmitter } from 'node:events';
  interface NanoSocket extends EventEmitter {
    connect(addr: string): number;
    bind(addr: string): number;
    send(buf: Buffer | string): number;
    close(): void;
    chan(channels: string[]): void;
    rcvmaxsize(size: number): void;
    reconn(ms: number): void;
    maxreconn(ms: number): void;
    sndtimeo(ms: number): void;
    closed?: boolean;
  }
  interface SocketOptions {
    reconn?: number;
    maxreconn?: number;
    rcvmaxsize?: number;
    chan?: string[];
  }
  function socket(type: 'req' | 'rep' | 'pub' | 'sub' | 'pair' | 'push' | 'pull', opts?: SocketOptions): NanoSocket;
  export { socket, NanoSocket };
}
