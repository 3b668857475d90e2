/**
 * A real PostgreSQL server on 127.0.0.1 for the cluster tests (DESIGN §5): the server logic lives
 * in scripts/postgres-server.js, plain JavaScript that `npm run bench` starts too (bench/run.js
 * runs without a build); here the tests take it with its types. Test servers run with fsync off.
 */
export { PG_PASSWORD, PG_USER, postgresBin, startPostgres, type Postgres } from '../../scripts/postgres-server.js';
