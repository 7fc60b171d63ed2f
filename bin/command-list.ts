/**
 * The CLI's verbs and their one-line help. Its own module because the launcher
 * (bin/launcher.ts) keeps one code cache per verb and must stay small.
 */
export const COMMANDS: Readonly<Record<string, string>> = {
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
  update: 'update the resource limits of a running container (-r FILE, --memory, --cpu-quota, --pids-limit, ...)',
};

/** Global flags that take a value in the next argument (`--root DIR`). */
export const VALUE_FLAGS: ReadonlySet<string> = new Set(['--root', '--log', '--log-format', '--rootless', '--criu']);
