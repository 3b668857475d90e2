/**
 * A 30 MB embedded file: encrypted once (no whole-document copies), and poppler gives it back byte
 * for byte. The time is printed for the record, not asserted (speed is the bench's business).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PDFDocument, PDFHexString, PDFString } from 'pdf-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveEncrypted } from '../../../src/pdfmail/security.js';
import { tempDir } from '../../helpers/config.js';
import { plaintextsIn, run } from '../../helpers/pdf-encrypted.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir('postern-pdfbig-')));
afterAll(() => cleanup());

describe('a 30 MB attachment', () => {
  it('is encrypted and comes back byte for byte from pdfdetach', async () => {
    const payload = randomBytes(30 << 20);
    const marker = 'MARKER-of-the-large-attachment-Zx81';
    Buffer.from(marker).copy(payload, 12345);
    const doc = await PDFDocument.create();
    const page = doc.addPage();
    const ctx = doc.context;
    const stream = ctx.register(ctx.stream(payload, { Type: 'EmbeddedFile', Params: { Size: payload.length } }));
    const spec = ctx.obj({ Type: 'Filespec', F: PDFString.of('big.bin'), UF: PDFHexString.fromText('big.bin'), EF: { F: stream } });
    page.node.addAnnot(ctx.register(ctx.obj({ Type: 'Annot', Subtype: 'FileAttachment', Rect: [10, 10, 30, 30], FS: spec })));

    const heapBefore = process.memoryUsage().arrayBuffers;
    const started = process.hrtime.bigint();
    const raw = await saveEncrypted(doc, { userPassword: 'K7mP-x9Qr-Tw4z', cipher: 'aes-256' });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const extraMb = (process.memoryUsage().arrayBuffers - heapBefore) / (1 << 20);
    console.log(`saveEncrypted, 30 MB attachment: ${ms.toFixed(0)} ms, ${extraMb.toFixed(0)} MB more array buffers held (file ${(raw.length / (1 << 20)).toFixed(1)} MB)`);

    expect(raw.length).toBeGreaterThan(payload.length);
    expect(raw.length).toBeLessThan(payload.length + 64 * 1024);
    expect(plaintextsIn(raw, [marker])).toEqual([]);
    const file = join(dir, 'big.pdf');
    await writeFile(file, raw);
    const d = run('pdfdetach', ['-upw', 'K7mP-x9Qr-Tw4z', '-saveall', '-o', dir, file]);
    expect([d.code, d.stderr]).toEqual([0, '']);
    const back = await readFile(join(dir, 'big.bin'));
    expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
  });
});
