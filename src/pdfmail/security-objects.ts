/**
 * ISO 32000-2 §7.6.2 on pdf-lib's object model: every string and every stream of an indirect
 * object — however deep in dictionaries and arrays, stream dictionaries included — encrypted with
 * that object's key, AES-CBC with a random IV in front and PKCS#7 padding (§7.6.3). The result is a
 * copy in another PDFContext: the caller's document is left as it was, and nothing of it is
 * written in clear by accident because only what this walker produced is in the new context.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import {
  PDFArray,
  PDFContext,
  PDFCrossRefStream,
  PDFDict,
  PDFFlateStream,
  PDFHexString,
  PDFInvalidObject,
  PDFName,
  PDFObject,
  PDFObjectStream,
  PDFRef,
  PDFStream,
  PDFString,
} from 'pdf-lib';
import { PdfSecurityError } from './security-errors.js';

export interface ObjectKey {
  algorithm: 'aes-256-cbc' | 'aes-128-cbc';
  key: Uint8Array;
}

/** R6 has one key for all; R4 derives one per object (Algorithm 1). */
export type KeyForObject = (ref: PDFRef) => ObjectKey;

/** Slices handed to the cipher at once: bounds the extra memory a 30 MB attachment costs. */
const SLICE = 4 << 20;

/**
 * IVs from one CSPRNG read per 256 of them: a PDF has a string or stream per few hundred bytes, and
 * a call into OpenSSL per 16 bytes showed in the profile. Each IV is used once (copied out).
 */
let ivPool = Buffer.alloc(0);
function freshIv(): Buffer {
  if (ivPool.length < 16) ivPool = randomBytes(16 * 256);
  const iv = Buffer.from(ivPool.subarray(0, 16));
  ivPool = ivPool.subarray(16);
  return iv;
}

/** IV ‖ AES-CBC(data) as the cipher's own chunks, so a large stream is never concatenated. */
export function aesCbcChunks({ algorithm, key }: ObjectKey, data: Uint8Array): { chunks: Buffer[]; size: number } {
  const iv = freshIv();
  const cipher = createCipheriv(algorithm, key, iv);
  const chunks: Buffer[] = [iv];
  for (let at = 0; at < data.length; at += SLICE) {
    const out = cipher.update(data.subarray(at, at + SLICE));
    if (out.length > 0) chunks.push(out);
  }
  chunks.push(cipher.final());
  let size = 0;
  for (const c of chunks) size += c.length;
  return { chunks, size };
}

/**
 * A stream whose bytes are already encrypted, held as the cipher's chunks. pdf-lib's own
 * PDFStream.copyBytesInto copies byte by byte; this one copies each chunk with one set().
 */
export class EncryptedStream extends PDFStream {
  constructor(
    dict: PDFDict,
    private readonly chunks: Buffer[],
    private readonly size: number,
  ) {
    super(dict);
  }

  override getContents(): Uint8Array {
    return Buffer.concat(this.chunks, this.size);
  }

  override getContentsSize(): number {
    return this.size;
  }

  override getContentsString(): string {
    return Buffer.concat(this.chunks, this.size).toString('latin1');
  }

  override copyBytesInto(buffer: Uint8Array, offset: number): number {
    this.updateDict();
    const start = offset;
    offset += this.dict.copyBytesInto(buffer, offset);
    offset += writeAscii(buffer, offset, '\nstream\n');
    for (const c of this.chunks) {
      buffer.set(c, offset);
      offset += c.length;
    }
    offset += writeAscii(buffer, offset, '\nendstream');
    return offset - start;
  }
}

function writeAscii(buffer: Uint8Array, offset: number, text: string): number {
  for (let i = 0; i < text.length; i++) buffer[offset + i] = text.charCodeAt(i);
  return text.length;
}

/** Encrypts indirect objects of one document into `target`. */
export class ObjectEncrypter {
  constructor(
    private readonly target: PDFContext,
    private readonly keyFor: KeyForObject,
  ) {}

  /** The encrypted copy of the indirect object `ref` (to be assigned to the same ref in target). */
  indirect(ref: PDFRef, object: PDFObject): PDFObject {
    return this.value(object, this.keyFor(ref));
  }

  private value(object: PDFObject, key: ObjectKey): PDFObject {
    if (object instanceof PDFString || object instanceof PDFHexString) {
      // asBytes() undoes the literal string's escapes: the bytes a reader would have decoded.
      const { chunks, size } = aesCbcChunks(key, object.asBytes());
      return PDFHexString.of(Buffer.concat(chunks, size).toString('hex'));
    }
    if (object instanceof PDFDict) return this.dict(object, key);
    if (object instanceof PDFArray) {
      const out = PDFArray.withContext(this.target);
      for (let i = 0; i < object.size(); i++) out.push(this.value(object.get(i), key));
      return out;
    }
    if (object instanceof PDFStream) return this.stream(object, key);
    if (object instanceof PDFInvalidObject) {
      throw new PdfSecurityError('the PDF holds an object pdf-lib could not parse; it cannot be encrypted faithfully', 'unsupported-document');
    }
    // Names, numbers, booleans, null and references carry no text of the mail and are not
    // encrypted by the standard: shared with the source, never modified here.
    return object;
  }

  private dict(dict: PDFDict, key: ObjectKey): PDFDict {
    const map = new Map<PDFName, PDFObject>();
    for (const [name, v] of dict.entries()) map.set(name, this.value(v, key));
    return PDFDict.fromMapWithContext(map, this.target);
  }

  private stream(stream: PDFStream, key: ObjectKey): PDFStream {
    // Both would be written as one stream whose inner objects escape the per-object encryption,
    // and a classic xref table (what we write) cannot point into an object stream anyway.
    if (stream instanceof PDFObjectStream || stream instanceof PDFCrossRefStream) {
      throw new PdfSecurityError('the PDF holds an object or cross-reference stream; save it without object streams first', 'unsupported-document');
    }
    const dict = this.dict(stream.dict, key);
    // getContents() is the filtered (e.g. deflated) bytes, computed now for pdf-lib's own
    // content streams: the /Filter stays as it is and the cipher works on what the file stores.
    const { chunks, size } = aesCbcChunks(key, filtered(stream));
    return new EncryptedStream(dict, chunks, size);
  }
}

/**
 * A stream's bytes as the file stores them. pdf-lib deflates its own content streams with pako
 * (JavaScript, and a costly set-up per stream): those are deflated here with node:zlib instead,
 * the same /FlateDecode data any reader inflates; every other stream's bytes are taken as they are.
 */
function filtered(stream: PDFStream): Uint8Array {
  if (stream instanceof PDFFlateStream && (stream as unknown as { encode: boolean }).encode) return deflateSync(stream.getUnencodedContents());
  return stream.getContents();
}
