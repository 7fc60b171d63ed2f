/**
 * A machine's statechart as the live view draws it: its top-level states and the
 * transitions between them, read from the machine's own definition (XState's resolved
 * state nodes, so targets are real states, not strings to parse). Nested states fold
 * into their top-level parent; transitions the root takes in any state come with
 * `from: '*'`. Sent once per machine per viewer.
 */
export interface ChartDefinition {
  readonly machine: string;
  readonly initial: string | undefined;
  readonly states: ReadonlyArray<{ readonly key: string; readonly final: boolean; readonly description?: string }>;
  readonly edges: ReadonlyArray<{ readonly from: string; readonly to: string; readonly event: string }>;
}

interface StateNodeLike {
  key: string;
  type: string;
  path: string[];
  description?: string;
  states: Record<string, StateNodeLike>;
  transitions: Map<string, Array<{ target?: StateNodeLike[] }>>;
  always?: Array<{ target?: StateNodeLike[] }>;
  initial?: { target?: StateNodeLike[] };
}

/** The chart of an actor's logic, or undefined when it is not a state machine (a promise actor). */
export function chartOf(logic: unknown): ChartDefinition | undefined {
  const root = (logic as { root?: StateNodeLike } | undefined)?.root;
  const id = (logic as { id?: unknown } | undefined)?.id;
  if (!root || typeof id !== 'string' || !root.states) return undefined;
  const top = (n: StateNodeLike): string | undefined => n.path[0];
  const states = Object.values(root.states).map((s) => ({
    key: s.key,
    final: s.type === 'final',
    ...(typeof s.description === 'string' ? { description: s.description } : {}),
  }));
  const edges: Array<{ from: string; to: string; event: string }> = [];
  const seen = new Set<string>();
  const add = (from: string, to: string | undefined, event: string) => {
    if (to === undefined) return;
    const k = `${from}\u0000${to}\u0000${event}`;
    if (seen.has(k)) return;
    seen.add(k);
    edges.push({ from, to, event: readableEvent(event) });
  };
  const walk = (node: StateNodeLike, from: string) => {
    for (const [event, list] of node.transitions ?? []) for (const t of list) for (const target of t.target ?? []) add(from, top(target), event);
    for (const t of node.always ?? []) for (const target of t.target ?? []) add(from, top(target), 'always');
    for (const child of Object.values(node.states ?? {})) walk(child, from);
  };
  for (const [event, list] of root.transitions ?? []) for (const t of list) for (const target of t.target ?? []) add('*', top(target), event);
  for (const s of Object.values(root.states)) walk(s, s.key);
  const initial = root.initial?.target?.[0];
  return { machine: id, initial: initial ? top(initial) : undefined, states, edges: edges.filter((e) => e.from !== e.to || e.from === '*') };
}

/** `xstate.after.backoffDelay.restart.backoff` reads as `after backoffDelay`; `xstate.done.actor.launch` as `done launch`. */
function readableEvent(event: string): string {
  const after = /^xstate\.after\.([^.]+)/.exec(event);
  if (after) return `after ${after[1]}`;
  const done = /^xstate\.(done|error)\.actor\.(.+)$/.exec(event);
  if (done) return `${done[1]} ${done[2]}`;
  return event;
}
