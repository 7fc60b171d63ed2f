/**
 * The CLI's verbs and their one-line help: the one list of verbs. bin/paddock.ts's
 * loaders are typed by it, so a verb cannot be added to one and not the other. Its own
 * module because the launcher (bin/launcher.ts) keeps one code cache per verb and must
 * stay small (the loaders' requires would pull every command into it).
 */
export const COMMANDS = {
  create: 'create the container (its sandbox process) without starting it',
  start: 'start the created container',
  run: 'create and start a container, wait for it, delete it',
  state: 'print the OCI state of a container',
  kill: 'send a signal to the container',
  delete: 'delete a container and everything of it',
  exec: 'run a process in a running container',
  ps: 'list the processes of a container',
  list: 'list containers',
  events: 'print container stats',
  pause: 'suspend all processes of the container (cgroup freezer)',
  resume: 'resume the processes of a paused container',
  checkpoint: 'checkpoint a running container with CRIU',
  restore: 'restore a container from a checkpoint',
  spec: 'write a starting config.json',
  features: 'print what this runtime supports (OCI features JSON)',
  debug: 'debug stacks ID: each thread\'s state, wchan, syscall and kernel stack (init and every container process)',
  inspect: 'serve a live view of the containers of --root in a browser (--port P, --host H, --actions; loopback, with a token)',
  update: 'update the resource limits of a running container (-r FILE, --memory, --cpu-quota, --pids-limit, ...)',
} as const satisfies Readonly<Record<string, string>>;

export type Verb = keyof typeof COMMANDS;

export function isVerb(word: string): word is Verb {
  return Object.prototype.hasOwnProperty.call(COMMANDS, word);
}

/** Global flags that take a value in the next argument (`--root DIR`). */
export const VALUE_FLAGS: ReadonlySet<string> = new Set(['--root', '--log', '--log-format', '--rootless', '--criu']);
