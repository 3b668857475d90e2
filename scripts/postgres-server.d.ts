/** Types of scripts/postgres-server.js (plain JavaScript, shared by the tests and the bench). */
import type pg from 'pg';

export declare const PG_USER: string;
export declare const PG_PASSWORD: string;

export interface Postgres {
  port: number;
  /** The data directory (removed by stop()). */
  dir: string;
  /** A URL for `database`, without the password (give `password` apart, as the config does). */
  url(database?: string): string;
  password: string;
  /** CREATE DATABASE with a fresh name (or `name`); its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Run SQL as the superuser in `database` (default postgres). */
  query(sql: string, params?: unknown[], database?: string): Promise<pg.QueryResult>;
  /** Stop the server, keeping its data (fast shutdown: connected clients are cut off). */
  halt(): Promise<void>;
  /** Start it again on the same port with the same data. */
  resume(): Promise<void>;
  /** Stop it and remove the data. */
  stop(): Promise<void>;
}

/** The directory of initdb and pg_ctl, or a clear error. */
export declare function postgresBin(): string;

/**
 * A server of its own; `durable`: fsync and synchronous commit on, as in production (the bench);
 * `settings`: more server settings (-c name=value), e.g. shared_preload_libraries.
 */
export declare function startPostgres(opts?: { durable?: boolean; settings?: Record<string, string> }): Promise<Postgres>;
