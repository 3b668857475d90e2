/**
 * Entry point of the relay role (`node dist/roles/relay.js -c FILE`). It holds no KEK (the
 * supervisor gives it none of the KEK's variables) and stays root: it delivers into maildirs
 * wherever the admin routes mail, and talks only to next hops it chose. Workers announce what
 * they commit straight to it over data_dir/relay.sock (handoff.ts), or through the supervisor.
 */
import { startRelay } from '../relay/index.js';
import { listenForHandoff } from './handoff.js';
import { main } from './run.js';

main('relay', async ({ config, dataDir, spool, log }) => {
  const relay = await startRelay({ config, spool, log });
  const connected = () => log.info({ event: 'relay.handoff_connected' }, 'a worker announces its outputs directly');
  const stopHandoff = await listenForHandoff(dataDir, (names) => relay.offer(names), connected).catch((err: Error) => {
    // Announcements then come through the supervisor, as before: slower, never lost.
    log.warn({ event: 'relay.handoff_unavailable', reason: err.message }, 'workers announce through the supervisor');
    return async () => undefined;
  });
  return {
    reload: (c) => relay.reload(c),
    close: async () => {
      await stopHandoff();
      await relay.close();
    },
    announce: (m) => m.type === 'outgoing' && relay.offer(m.names),
  };
});
