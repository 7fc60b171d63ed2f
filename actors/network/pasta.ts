import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { DNS_FORWARD_ADDRESS, type NetworkPlan, type ResolvedForward } from '../../specs/network';
import type { HelperProcess } from '../../machines/network.machine';
import type { NativeFacade } from '../../native/facade';
import { PaddockError } from '../../base/errors';
import { removeFile } from '../../base/remove-tree';
import { processStartTime } from '../sandbox/state-store';

type UserPlan = Extract<NetworkPlan, { mode: 'user' }>;

/** The name of the sandbox's interface, whatever the host's is called. */
export const SANDBOX_IFNAME = 'eth0';
/** How long pasta may take to configure the namespace and bind the forwards. */
const READY_TIMEOUT_MS = 5_000;
const POLL_MS = 10;

function portSpec(forwards: readonly ResolvedForward[], protocol: 'tcp' | 'udp'): string[] {
  const mine = forwards.filter((f) => f.protocol === protocol);
  if (mine.length === 0) return ['none'];
  return mine.map((f) => `${f.hostIp}/${f.hostPort}:${f.containerPort}`);
}

/**
 * pasta's command line for a sandbox whose init is `initPid`. pasta joins init's user
 * and network namespaces by its pid; it must stay root to do so (`--runas` the
 * supervisor's own ids: by default a root pasta turns into nobody first, and nobody may
 * not enter a root-owned user namespace). It then isolates itself in namespaces of its
 * own. Nothing is forwarded but what the plan says (pasta's default, `auto`, would
 * forward every port bound inside), and nothing from the sandbox to the host's
 * loopback ports (`-T none -U none`).
 */
export function pastaArgs(plan: UserPlan, initPid: number, pidFile: string, ids: { uid: number; gid: number }): string[] {
  const args = ['--foreground', '--quiet', '--runas', `${ids.uid}:${ids.gid}`, '--ns-ifname', SANDBOX_IFNAME, '--pid', pidFile];
  for (const spec of portSpec(plan.forwards, 'tcp')) args.push('-t', spec);
  for (const spec of portSpec(plan.forwards, 'udp')) args.push('-u', spec);
  args.push('-T', 'none', '-U', 'none');
  if (plan.egress) {
    args.push('--config-net');
    if (plan.dns) args.push('--dns-forward', DNS_FORWARD_ADDRESS);
  } else {
    // The interface stays without an address or a route, and pasta offers none (no
    // DHCP, NDP or router advertisements), so nothing the sandbox sends can leave it;
    // connections from the host's loopback to a forwarded port are spliced to the
    // sandbox's loopback and need neither.
    args.push('--no-map-gw', '--no-dhcp', '--no-dhcpv6', '--no-ndp', '--no-ra');
  }
  args.push(String(initPid));
  return args;
}

/**
 * Starts pasta for the sandbox and resolves once the namespace is configured and the
 * forwards are bound (pasta writes its pid file then). Its stderr goes to `logFile`; a
 * pasta that exits or does not get there within 5 s is ENETWORK_UNAVAILABLE with what
 * it said.
 */
export async function startPasta(native: Signaller, binary: string, args: readonly string[], pidFile: string, logFile: string): Promise<HelperProcess> {
  removeFile(pidFile);
  const log = fs.openSync(logFile, 'a', 0o600);
  let child;
  try {
    // detached: its own session, so a terminal's ^C to the supervisor does not take the network with it.
    child = spawn(binary, args, { stdio: ['ignore', 'ignore', log], detached: true });
  } finally {
    fs.closeSync(log);
  }
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exited with status ${String(code)}`));
    child.once('error', (e) => resolve(e.message));
  });
  // The supervisor's event loop must not wait for the helper: it outlives any one supervisor.
  child.unref();
  let gone: string | undefined;
  void exited.then((r) => (gone = r));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (gone === undefined && Date.now() < deadline) {
    if (fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() !== '') break;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const pid = child.pid;
  const startTime = pid !== undefined ? processStartTime(pid) : undefined;
  if (gone !== undefined || pid === undefined || startTime === undefined) {
    throw new PaddockError('ENETWORK_UNAVAILABLE', `network: pasta ${gone ?? 'did not start'}: ${lastLines(logFile)}`, { step: 'pasta' });
  }
  if (!fs.existsSync(pidFile)) {
    stopHelper(native, { pid, startTime });
    throw new PaddockError('ENETWORK_UNAVAILABLE', `network: pasta did not configure the sandbox within ${READY_TIMEOUT_MS} ms: ${lastLines(logFile)}`, { step: 'pasta' });
  }
  return { pid, startTime };
}

function lastLines(file: string): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
    return lines.slice(-3).join('; ') || 'no message';
  } catch {
    return 'no message';
  }
}

/**
 * SIGKILLs the helper if it is still the process recorded (same pid and start time),
 * and waits (bounded) until it is gone, so its ports are free when this returns.
 * Returns whether it was running.
 */
export async function stopHelperAndWait(native: Signaller, helper: HelperProcess, timeoutMs = 2_000): Promise<boolean> {
  if (!stopHelper(native, helper)) return false;
  const deadline = Date.now() + timeoutMs;
  while (processStartTime(helper.pid) === helper.startTime && Date.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS));
  return true;
}

export type Signaller = Pick<NativeFacade, 'pidfdOpen' | 'pidfdSendSignal' | 'closeFd'>;

/**
 * SIGKILL to the helper if it is still the process recorded; whether it was. Through a
 * pidfd opened before the start time is compared, so a pid reused meanwhile is never hit.
 */
export function stopHelper(native: Signaller, helper: HelperProcess): boolean {
  let fd;
  try {
    fd = native.pidfdOpen(helper.pid);
  } catch {
    return false;
  }
  try {
    if (processStartTime(helper.pid) !== helper.startTime) return false;
    native.pidfdSendSignal(fd, 9);
    return true;
  } catch {
    return false;
  } finally {
    native.closeFd(fd);
  }
}
