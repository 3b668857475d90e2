/** Addresses in header fields, as the crypto layers need them: the From: a signature must match. */

/** Addresses in a From: (or any address list) header: the addr-specs, lower-cased domain kept as written. */
export function addressesOf(value: string): string[] {
  const angle = [...value.matchAll(/<([^<>\s]+@[^<>\s]+)>/g)].map((m) => m[1]!);
  if (angle.length) return angle;
  return value
    .split(',')
    .map((s) => s.replace(/\(.*?\)/g, '').trim())
    .filter((s) => /^[^\s@]+@[^\s@]+$/.test(s));
}
