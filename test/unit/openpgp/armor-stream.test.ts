/**
 * The streamed armour (openpgp/armor-stream.ts) against openpgp.js' own armor() as the Buffer path
 * writes it (crlfArmor): byte for byte, with and without the CRC-24, for lengths around the
 * 45-byte line and the batch size, cut into chunks of uneven sizes (and as large as openpgp.js gives them).
 */
import { randomBytes } from 'node:crypto';
import * as openpgp from 'openpgp';
import { describe, expect, it } from 'vitest';
import { armoredMessageChunks } from '../../../src/openpgp/armor-stream.js';
import { crlfArmor } from '../../../src/openpgp/message.js';

async function streamed(data: Buffer, cut: number, checksum: boolean): Promise<string> {
  const chunks = (async function* () {
    for (let at = 0; at < data.length; at += cut) yield new Uint8Array(data.subarray(at, at + cut));
  })();
  const parts: Buffer[] = [];
  for await (const c of armoredMessageChunks(chunks, checksum)) parts.push(c);
  return Buffer.concat(parts).toString('latin1');
}

describe('streamed ASCII armour', () => {
  it('is what openpgp.armor() and crlfArmor() make, for any length and any chunking', async () => {
    for (const length of [1, 2, 3, 44, 45, 46, 89, 90, 1000, 90_000, 90_001, 600_000]) {
      const data = randomBytes(length);
      for (const checksum of [true, false]) {
        const expected = crlfArmor(openpgp.armor(openpgp.enums.armor.message, new Uint8Array(data), undefined, undefined, undefined, checksum));
        for (const cut of [7, 44, 45, 46, 1_000, 7_919, 65_536, 262_145]) {
          if (cut < 7_919 && length > 100_000) continue;
          expect(await streamed(data, cut, checksum), `length ${length}, chunks of ${cut}, checksum ${checksum}`).toBe(expected);
        }
      }
    }
  });
});
