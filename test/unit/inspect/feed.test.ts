import { createActor } from 'xstate';
import { supervisorMachine } from '../../../machines/supervisor.machine';
import { restartMachine } from '../../../machines/restart.machine';
import { LiveFeed, type PageMessage } from '../../../actors/inspect/feed';
import { chartOf } from '../../../actors/inspect/chart';

test('probe', async () => {
  const got: PageMessage[][] = [];
  const feed = new LiveFeed((b) => got.push(b));
  const a = createActor(supervisorMachine, { id: 'supervisor', inspect: feed.inspect });
  a.start();
  await new Promise((r) => setImmediate(r));
  console.log(JSON.stringify(got).slice(0, 2000));
  console.log(JSON.stringify(chartOf(restartMachine)).slice(0, 3000));
});
