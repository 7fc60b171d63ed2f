import { expectPositionals, parseArgs } from '../args';
import type { CliContext } from '../context';
import { freezeVerb } from './pause';

/** `resume ID`: thaws a paused container's sandbox ("container not paused" otherwise, as runc). */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const [id] = expectPositionals(parseArgs(argv, []), 'resume', ['container-id']) as [string];
  return freezeVerb(ctx, id, 'resume');
}
