/**
 * Entry point of the relay role (`node dist/roles/relay.js -c FILE`). It holds no KEK (the
 * supervisor gives it none of the KEK's variables) and stays root: it delivers into maildirs
 * wherever the admin routes mail, and talks only to next hops it chose.
 */
import { startRelay } from '../relay/index.js';
import { main } from './run.js';

main('relay', async ({ config, spool, log }) => {
  const relay = await startRelay({ config, spool, log });
  return {
    reload: (c) => relay.reload(c),
    close: () => relay.close(),
    announce: (m) => m.type === 'outgoing' && relay.offer(m.names),
  };
});
