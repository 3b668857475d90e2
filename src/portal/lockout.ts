/**
 * Lock-out of password guessing on the portal's sign-in forms (PDF reply, webmail): per account
 * and per client address, each counted in portal.db so a restart forgives nothing. Below the
 * threshold a try is free; from it on, each further try must wait `backoff`, doubling per failure
 * up to `max_backoff`, counted from the last failure. A success clears the account's count but
 * not the client's (else a guesser would clear it by signing in to an account of their own);
 * counts are forgotten a day after their last failure. The caller answers a locked try without checking the password at all, with the
 * same page for an account that exists and one that does not.
 */
import type { PortalConfig } from '../config/types.js';

/** A day without failures forgives the earlier ones. */
const FORGET_AFTER = 86_400_000;

export type FailureKind = 'account' | 'client';

/** What PortalDb offers for this (keystore/portal-db.ts). */
export interface LoginFailureStore {
  loginFailures(kind: FailureKind, key: string): Promise<{ count: number; last: Date | null }>;
  recordLoginFailure(kind: FailureKind, key: string, now?: Date): Promise<{ count: number; last: Date }>;
  clearLoginFailures(kind: FailureKind, key: string): Promise<void>;
}

export class LoginGuard {
  constructor(
    private readonly store: LoginFailureStore,
    private readonly cfg: PortalConfig['lockout'],
    private readonly now: () => number = Date.now,
  ) {}

  private waitAfter(count: number, threshold: number): number {
    if (count < threshold) return 0;
    const steps = Math.min(count - threshold, 30);
    return Math.min(this.cfg.backoff * 2 ** steps, this.cfg.max_backoff);
  }

  /** ms until `account` may be tried again from `client` (0: now). `account` is the canonical key (address, token hash). */
  async wait(account: string, client: string): Promise<number> {
    const [a, c] = await Promise.all([this.store.loginFailures('account', account), this.store.loginFailures('client', client)]);
    const t = this.now();
    const left = (f: { count: number; last: Date | null }, threshold: number) =>
      f.last && t - f.last.getTime() <= FORGET_AFTER ? Math.max(0, f.last.getTime() + this.waitAfter(f.count, threshold) - t) : 0;
    return Math.max(left(a, this.cfg.account), left(c, this.cfg.client));
  }

  async failed(account: string, client: string): Promise<void> {
    const at = new Date(this.now());
    for (const [kind, key] of [['account', account], ['client', client]] as const) {
      const before = await this.store.loginFailures(kind, key);
      if (before.last && at.getTime() - before.last.getTime() > FORGET_AFTER) await this.store.clearLoginFailures(kind, key);
      await this.store.recordLoginFailure(kind, key, at);
    }
  }

  async succeeded(account: string): Promise<void> {
    await this.store.clearLoginFailures('account', account);
  }
}
