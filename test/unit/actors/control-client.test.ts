import * as fs from 'node:fs';
import * as nano from 'nanomsg';
import * as os from 'node:os';
import * as path from 'node:path';
import { ControlClient } from '../../../actors/channels/control-client';
import { decode } from '../../../protocols/decode';
import { encode } from '../../../protocols/encode';
import type { Message } from '../../../protocols/messages';
import { WireCode } from '../../../protocols/messages';

/**
 * The control client against a real nanomsg REP socket standing in for paddock-init:
 * replies, typed errors from wire codes, queueing (REQ carries one request at a time)
 * and timeouts.
 */
describe('ControlClient', () => {
  let dir: string;
  let rep: nano.NanoSocket;
  let client: ControlClient;
  let answer: (m: Message) => Message | undefined;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-cc-'));
    rep = nano.socket('rep');
    rep.bind(`ipc://${path.join(dir, 'control.sock')}`);
    rep.on('data', (buf: Buffer) => {
      const reply = answer(decode(buf));
      if (reply) rep.send(encode(reply));
    });
    client = new ControlClient('sb', path.join(dir, 'control.sock'), 300);
  });
  afterEach(() => {
    client.close();
    rep.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a request resolves with the OK reply', async () => {
    answer = (m) => (m.type === 'START_CONTAINER' ? { type: 'OK', pid: 1, hostPid: 4242 } : undefined);
    const r = await client.request({ type: 'START_CONTAINER', cid: 'c', plan: { args: ['true'], env: [], uid: 0, gid: 0 } });
    expect(r).toMatchObject({ type: 'OK', pid: 1, hostPid: 4242 });
  });

  test.each([
    [WireCode.NOT_FOUND, 'ECONTAINER_NOT_FOUND'],
    [WireCode.EXISTS, 'ECONTAINER_EXISTS'],
    [WireCode.LAUNCH, 'ELAUNCH_STEP'],
    [WireCode.BAD_STATE, 'EINVALID_STATE'],
    [WireCode.BAD_SIGNAL, 'EINVALID_SIGNAL'],
    [WireCode.BAD_MESSAGE, 'EPROTOCOL'],
    [WireCode.INTERNAL, 'ECONTROL'],
  ])('wire code %p becomes %p', async (code, want) => {
    answer = () => ({ type: 'ERROR', code, errno: 22, step: 'pivot_root', msg: '/x' });
    const err = await client.request({ type: 'WAIT', cid: 'c' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: want, context: expect.objectContaining({ sandboxId: 'sb', containerId: 'c' }) });
    if (want === 'ELAUNCH_STEP') expect((err as Error).message).toBe('pivot_root: EINVAL (/x)');
  });

  test('a LAUNCH error from a container hook is EHOOK_FAILED with the hook and what happened', async () => {
    answer = () => ({ type: 'ERROR', code: WireCode.LAUNCH, errno: 10, step: 'hook startContainer[1]', msg: '/bin/h: exit status 2: boom' });
    const err = await client.request({ type: 'WAIT', cid: 'c' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EHOOK_FAILED', message: 'hook startContainer[1]: /bin/h: exit status 2: boom', context: { step: 'hook startContainer[1]' } });
  });

  test('concurrent requests are queued and each gets its own reply', async () => {
    answer = (m) => (m.type === 'WAIT' ? { type: 'OK', state: 2, exitCode: Number(m.cid.slice(1)), signal: 0 } : undefined);
    const replies = await Promise.all([1, 2, 3, 4, 5].map((n) => client.request({ type: 'WAIT', cid: `c${n}` })));
    expect(replies.map((r) => r.exitCode)).toEqual([1, 2, 3, 4, 5]);
  });

  test('a reply later than the timeout is ETIMEOUT and never mistaken for the next reply', async () => {
    // The stand-in answers the first request late (a wedged init), the rest at once.
    let calls = 0;
    rep.removeAllListeners('data');
    rep.on('data', (buf: Buffer) => {
      const m = decode(buf);
      calls++;
      const reply = encode({ type: 'OK', text: m.type === 'STACKS' ? `reply-${calls}` : '' });
      if (calls === 1) setTimeout(() => rep.send(reply), 450);
      else rep.send(reply);
    });
    await expect(client.request({ type: 'STACKS' })).rejects.toMatchObject({ code: 'ETIMEOUT' });
    await new Promise((r) => setTimeout(r, 250));
    const second = await client.request({ type: 'STACKS' });
    expect(second.text).toBe('reply-2');
  });

  test('requests after close are rejected with ECONTROL', async () => {
    client.close();
    await expect(client.request({ type: 'PING' })).rejects.toMatchObject({ code: 'ECONTROL' });
  });

  test('the socket is opened by the first request, closed after a quiet spell and reopened by the next', async () => {
    const quiet = new ControlClient('sb2', path.join(dir, 'control.sock'), 300, 50);
    try {
      answer = () => ({ type: 'OK' });
      expect(quiet.connected).toBe(false);
      await quiet.request({ type: 'PING' });
      expect(quiet.connected).toBe(true);
      // Back-to-back requests keep it.
      await quiet.request({ type: 'PING' });
      expect(quiet.connected).toBe(true);
      await new Promise((r) => setTimeout(r, 150));
      expect(quiet.connected).toBe(false);
      // REP pairs the reply with the new connection's request.
      answer = (m) => (m.type === 'WAIT' ? { type: 'OK', state: 2, exitCode: 7, signal: 0 } : undefined);
      await expect(quiet.request({ type: 'WAIT', cid: 'c' })).resolves.toMatchObject({ exitCode: 7 });
      expect(quiet.connected).toBe(true);
    } finally {
      quiet.close();
    }
    expect(quiet.connected).toBe(false);
  });

  test('a request still waiting for its reply keeps the socket past the quiet spell', async () => {
    const quiet = new ControlClient('sb3', path.join(dir, 'control.sock'), 1_000, 30);
    try {
      let release!: () => void;
      const answered = new Promise<void>((r) => (release = r));
      rep.removeAllListeners('data');
      rep.on('data', () => void answered.then(() => rep.send(encode({ type: 'OK', text: 'late' }))));
      const pending = quiet.request({ type: 'STACKS' });
      await new Promise((r) => setTimeout(r, 120));
      expect(quiet.connected).toBe(true);
      release();
      await expect(pending).resolves.toMatchObject({ text: 'late' });
    } finally {
      quiet.close();
    }
  });
});
