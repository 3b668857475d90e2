/**
 * The backup file: one file, encrypted and authenticated under a key derived from a passphrase,
 * written and read in chunks so that a keystore of any size passes through a small buffer.
 *
 *     "PSTNBAK1"  ‖  u32 header length  ‖  header (JSON, UTF-8)  ‖  header MAC (32 bytes)
 *     chunk*:  u32 plaintext length  ‖  u8 final (0|1)  ‖  ciphertext  ‖  GCM tag (16 bytes)
 *
 * The header is readable without the passphrase (format, created, Postern version, the scrypt
 * parameters and salt, what kinds of things are inside) and authenticated by an HMAC under a key
 * derived from the passphrase: a wrong passphrase is told apart before anything else is read.
 * Each chunk is AES-256-GCM with nonce = its index and AAD = SHA-256(header) ‖ index ‖ final, the
 * STREAM construction (Hoang et al., 2015): chunks cannot be reordered, dropped, moved to another
 * backup, or cut off at a chunk boundary (the last chunk must say it is the last).
 *
 * Both keys come from one scrypt output through HKDF, so the passphrase is stretched once. The
 * salt is fresh per file, hence a fresh key per file, so counter nonces never repeat under a key.
 *
 * Untrusted input: the whole file when reading (header length, JSON, scrypt cost, chunk lengths
 * are bounded before use). Secrets: the passphrase and derived keys (zeroed after use), and the
 * plaintext, which leaves this module only after its chunk was authenticated.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { checkCost, runScrypt, SALT_BYTES, type ScryptCost } from '../scrypt.js';

/** Every backup problem, as one line that says what to do; never a secret in it. */
export class BackupError extends Error {
  override readonly name = 'BackupError';
}

export const BACKUP_FORMAT = 1;
const MAGIC = Buffer.from('PSTNBAK1', 'ascii');
const MAX_HEADER = 64 * 1024;
const MAC_BYTES = 32;
const TAG_BYTES = 16;
const CHUNK_HEAD = 5;
/** Plaintext per chunk: small enough to bound memory, large enough that framing costs nothing. */
export const CHUNK_BYTES = 64 * 1024;
const MAX_CHUNK = 16 * 1024 * 1024;

/** The backup's scrypt cost: as the passphrase KEK's (128 MiB, ~0.3 s), paid once per backup or restore. */
export const BACKUP_SCRYPT: Readonly<ScryptCost> = Object.freeze({ N: 2 ** 17, r: 8, p: 1 });
/** Shorter passphrases are refused: the file holds the KEK, so the passphrase is all that guards every key. */
export const MIN_PASSPHRASE_LENGTH = 12;

/** What the header says in clear. */
export interface BackupHeader {
  format: number;
  /** ISO 8601. */
  created: string;
  postern: string;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  chunk: number;
  /** What is inside, by kind (the names and sizes are in the encrypted manifest). */
  contents: { keystore: boolean; portal: boolean; kek: 'file' | 'passphrase-salt' | 'pkcs11-not-included'; config_files: number };
}

export function checkPassphrase(passphrase: string | undefined, variable: string): string {
  if (passphrase === undefined || passphrase === '') {
    throw new BackupError(`the backup passphrase variable ${variable} is not set or empty (--passphrase-env names another)`);
  }
  if ([...passphrase].length < MIN_PASSPHRASE_LENGTH) {
    throw new BackupError(`the backup passphrase in ${variable} is shorter than ${MIN_PASSPHRASE_LENGTH} characters: it alone guards every key in the backup`);
  }
  return passphrase;
}

interface Keys {
  header: Buffer;
  chunks: Buffer;
}

async function deriveKeys(passphrase: string, cost: ScryptCost, salt: Buffer): Promise<Keys> {
  const master = await runScrypt(passphrase, salt, cost, BackupError);
  try {
    const sub = (info: string) => Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `postern-backup ${info}`, 32));
    return { header: sub('header'), chunks: sub('chunks') };
  } finally {
    master.fill(0);
  }
}

const nonceOf = (index: bigint) => {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(index, 4);
  return n;
};

function aadOf(headerDigest: Buffer, index: bigint, final: boolean): Buffer {
  const a = Buffer.alloc(headerDigest.length + 9);
  headerDigest.copy(a);
  a.writeBigUInt64BE(index, headerDigest.length);
  a[headerDigest.length + 8] = final ? 1 : 0;
  return a;
}

/** Writes a backup to an open file: header first, then whatever is written, in chunks. */
export class BackupWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private index = 0n;
  private finished = false;

  private constructor(
    private readonly fh: FileHandle,
    private readonly key: Buffer,
    private readonly digest: Buffer,
  ) {}

  static async start(fh: FileHandle, opts: { passphrase: string; created: Date; postern: string; contents: BackupHeader['contents']; cost?: ScryptCost }): Promise<BackupWriter> {
    const cost = opts.cost ?? BACKUP_SCRYPT;
    checkCost(cost, BackupError);
    const salt = randomBytes(SALT_BYTES);
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      created: opts.created.toISOString(),
      postern: opts.postern,
      kdf: { name: 'scrypt', N: cost.N, r: cost.r, p: cost.p, salt: salt.toString('base64') },
      chunk: CHUNK_BYTES,
      contents: opts.contents,
    };
    const keys = await deriveKeys(opts.passphrase, cost, salt);
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(json.length);
    const head = Buffer.concat([MAGIC, len, json]);
    const mac = createHmac('sha256', keys.header).update(head).digest();
    keys.header.fill(0);
    await fh.write(Buffer.concat([head, mac]));
    return new BackupWriter(fh, keys.chunks, createHash('sha256').update(head).digest());
  }

  async write(data: Buffer): Promise<void> {
    let rest = data;
    while (rest.length) {
      const take = Math.min(rest.length, CHUNK_BYTES - this.pendingBytes);
      // A copy: callers reuse and zero their buffers.
      this.pending.push(Buffer.from(rest.subarray(0, take)));
      this.pendingBytes += take;
      rest = rest.subarray(take);
      if (this.pendingBytes === CHUNK_BYTES) await this.flush(false);
    }
  }

  /** Write the final chunk (possibly empty) and forget the key. The caller syncs and closes the file. */
  async finish(): Promise<void> {
    if (this.finished) return;
    await this.flush(true);
    this.finished = true;
    this.key.fill(0);
  }

  /** Forget the key without finishing (the caller removes the half-written file). */
  abandon(): void {
    this.key.fill(0);
    for (const p of this.pending) p.fill(0);
    this.pending = [];
  }

  private async flush(final: boolean): Promise<void> {
    const plain = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const cipher = createCipheriv('aes-256-gcm', this.key, nonceOf(this.index), { authTagLength: TAG_BYTES });
    cipher.setAAD(aadOf(this.digest, this.index, final));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    plain.fill(0);
    const head = Buffer.alloc(CHUNK_HEAD);
    head.writeUInt32BE(body.length);
    head[4] = final ? 1 : 0;
    await this.fh.write(Buffer.concat([head, body, cipher.getAuthTag()]));
    this.index++;
  }
}

/** Reads a backup: the header is checked against the passphrase on open, each chunk before its bytes are handed out. */
export class BackupReader {
  private buffered: Buffer = Buffer.alloc(0);
  private index = 0n;
  private ended = false;

  private constructor(
    private readonly fh: FileHandle,
    readonly header: BackupHeader,
    private readonly key: Buffer,
    private readonly digest: Buffer,
    /** File offset of the next chunk. */
    private offset: number,
    private readonly size: number,
  ) {}

  static async open(fh: FileHandle, passphrase: string): Promise<BackupReader> {
    const size = (await fh.stat()).size;
    const { head, header } = await readHead(fh);
    const mac = await readAt(fh, head.length, MAC_BYTES);
    if (mac.length < MAC_BYTES) throw new BackupError('the backup is truncated (it ends inside its header)');
    const keys = await deriveKeys(passphrase, header.kdf, Buffer.from(header.kdf.salt, 'base64'));
    const expected = createHmac('sha256', keys.header).update(head).digest();
    keys.header.fill(0);
    if (!timingSafeEqual(expected, mac)) {
      keys.chunks.fill(0);
      throw new BackupError('wrong passphrase for this backup (or its header was altered)');
    }
    return new BackupReader(fh, header, keys.chunks, createHash('sha256').update(head).digest(), head.length + MAC_BYTES, size);
  }

  /** Exactly `n` authenticated bytes, or BackupError when the file is damaged or ends before. */
  async read(n: number): Promise<Buffer> {
    while (this.buffered.length < n) {
      if (this.ended) throw new BackupError('the backup ends before its content does (damaged, or made by a broken writer)');
      this.buffered = Buffer.concat([this.buffered, await this.nextChunk()]);
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  /** Pass `n` bytes to `sink` a chunk at a time (a keystore need not fit in memory). */
  async pipe(n: number, sink: (piece: Buffer) => Promise<void>): Promise<void> {
    let left = n;
    while (left > 0) {
      if (!this.buffered.length) {
        if (this.ended) throw new BackupError('the backup ends before its content does (damaged, or made by a broken writer)');
        this.buffered = await this.nextChunk();
        continue;
      }
      const piece = this.buffered.subarray(0, Math.min(left, this.buffered.length));
      this.buffered = this.buffered.subarray(piece.length);
      left -= piece.length;
      await sink(piece);
    }
  }

  /** Check that the content ended where the final chunk did, and nothing follows it. */
  async end(): Promise<void> {
    if (this.buffered.length) throw new BackupError('the backup holds more than its manifest lists (damaged, or not written by Postern)');
    while (!this.ended) {
      if ((await this.nextChunk()).length) throw new BackupError('the backup holds more than its manifest lists (damaged, or not written by Postern)');
    }
    if (this.offset !== this.size) throw new BackupError(`the backup has ${this.size - this.offset} bytes after its end (altered)`);
  }

  close(): void {
    this.key.fill(0);
  }

  private async nextChunk(): Promise<Buffer> {
    const at = this.offset;
    const head = await readAt(this.fh, at, CHUNK_HEAD);
    if (head.length < CHUNK_HEAD) throw new BackupError(`the backup is truncated (it ends at byte ${at}, before its final chunk)`);
    const len = head.readUInt32BE(0);
    const flag = head[4];
    if (flag !== 0 && flag !== 1) throw new BackupError(`the backup is damaged or was altered (chunk ${this.index} at byte ${at})`);
    if (len > this.header.chunk) throw new BackupError(`the backup is damaged or was altered (chunk ${this.index} at byte ${at} claims ${len} bytes)`);
    const body = await readAt(this.fh, at + CHUNK_HEAD, len + TAG_BYTES);
    if (body.length < len + TAG_BYTES) throw new BackupError(`the backup is truncated (it ends inside chunk ${this.index}, at byte ${at + CHUNK_HEAD + body.length})`);
    const decipher = createDecipheriv('aes-256-gcm', this.key, nonceOf(this.index), { authTagLength: TAG_BYTES });
    decipher.setAAD(aadOf(this.digest, this.index, flag === 1));
    decipher.setAuthTag(body.subarray(len));
    const plain = decipher.update(body.subarray(0, len));
    try {
      decipher.final();
    } catch {
      plain.fill(0);
      throw new BackupError(`the backup is damaged or was altered (chunk ${this.index} at byte ${at} fails authentication)`);
    }
    this.offset = at + CHUNK_HEAD + len + TAG_BYTES;
    this.index++;
    this.ended = flag === 1;
    return plain;
  }
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

function parseHeader(json: Buffer): BackupHeader {
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(json.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new BackupError('the backup\'s header is not valid (damaged, or not a Postern backup)');
  }
  if (typeof h !== 'object' || h === null) throw new BackupError('the backup\'s header is not valid (damaged, or not a Postern backup)');
  if (h.format !== BACKUP_FORMAT) {
    throw new BackupError(`the backup has format ${JSON.stringify(h.format)}; this Postern reads format ${BACKUP_FORMAT} (restore with the Postern that made it, or a newer one)`);
  }
  const kdf = h.kdf as Record<string, unknown> | undefined;
  const salt = typeof kdf?.salt === 'string' ? Buffer.from(kdf.salt, 'base64') : Buffer.alloc(0);
  if (kdf?.name !== 'scrypt' || salt.length !== SALT_BYTES) throw new BackupError('the backup\'s header names an unknown key derivation (damaged, or not a Postern backup)');
  // Bounded before scrypt runs: a forged cost must not exhaust the machine.
  checkCost({ N: Number(kdf.N), r: Number(kdf.r), p: Number(kdf.p) }, BackupError);
  const chunk = h.chunk;
  if (typeof chunk !== 'number' || !Number.isInteger(chunk) || chunk < 1 || chunk > MAX_CHUNK) throw new BackupError('the backup\'s header has an invalid chunk size (damaged)');
  if (typeof h.created !== 'string' || typeof h.postern !== 'string' || typeof h.contents !== 'object' || h.contents === null) {
    throw new BackupError('the backup\'s header is incomplete (damaged, or not a Postern backup)');
  }
  return h as unknown as BackupHeader;
}

/** Magic, length and header: the bytes the MAC covers, and the header parsed (not yet authenticated). */
async function readHead(fh: FileHandle): Promise<{ head: Buffer; header: BackupHeader }> {
  const fixed = await readAt(fh, 0, MAGIC.length + 4);
  if (fixed.length < MAGIC.length + 4 || !fixed.subarray(0, MAGIC.length).equals(MAGIC)) throw new BackupError('not a Postern backup (its first bytes are not the backup format\'s)');
  const len = fixed.readUInt32BE(MAGIC.length);
  if (len > MAX_HEADER) throw new BackupError(`the backup's header claims ${len} bytes: damaged, or not a Postern backup`);
  const json = await readAt(fh, fixed.length, len);
  if (json.length < len) throw new BackupError('the backup is truncated (it ends inside its header)');
  return { head: Buffer.concat([fixed, json]), header: parseHeader(json) };
}
