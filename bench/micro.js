/**
 * Micro figures: the crypto one message costs on a worker's hot path, in-process on one core, each
 * beside the raw Node operation it is built on, measured in the same run. The two are timed in
 * alternating slices (A, B, A, B …) so that a noisy, shared machine slows both alike: the ratio is
 * the figure to watch, the microseconds only say where it stands today. Every operation's output
 * is checked once before it is timed (it decrypts, it verifies), so a figure never times a failure.
 *
 *   smime-encrypt     encryptSync: 4 KB to one RSA-2048 recipient (PKCS#1 v1.5, AES-256-CBC)
 *                     vs publicEncrypt of a 32-byte key (RSA-2048, PKCS#1) + AES-256-CBC of 4 KB
 *   smime-encrypt-ec  encryptSync: 4 KB to one EC P-256 recipient (ECDH, AES-256-CBC) vs an
 *                     ephemeral P-256 key + ECDH + AES-256-CBC of 4 KB
 *   smime-decrypt     decryptSync of the RSA one vs the raw RSA-2048 private operation (RSA_NO_PADDING,
 *                     as Postern unpads itself) + AES-256-CBC decipher of 4 KB
 *   smime-sign-rsa    signDetached (4 KB, SHA-256, RSA-2048) vs crypto.sign of the same content
 *   smime-sign-ec     the same with EC P-256
 *   smime-verify-rsa  verifyDetached (signature, chain to a trusted root) vs the two raw checks it
 *                     needs: crypto.verify of the content (RSA-2048) and of the certificate's
 *                     signature by the CA (X509Certificate.verify, P-256)
 *   pgp-sign-encrypt  pgpEncryptMessage: sign (Ed25519) and encrypt (Cv25519) a 4 KB message vs
 *                     Ed25519 sign + X25519 key agreement + AES-256 of 4 KB in Node
 *   pgp-rsa-decrypt   pgpOpenMessage of a message to an RSA-3072 key vs the raw RSA-3072 private
 *                     operation (openpgp.js' own constant-time RSA took ~250 ms here)
 *
 * Run by `npm run bench` with the scenarios, or alone: `npm run bench -- --only micro [--quick]`.
 * The modules come from dist/ (npm run bench builds first).
 */
import { constants, createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, privateDecrypt, publicEncrypt, randomBytes, sign, verify, X509Certificate } from 'node:crypto';
import { join } from 'node:path';

const round = (x, d = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);

/** Time `fn` (sync or async) for about `ms`; operations and milliseconds spent. */
async function slice(fn, ms) {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    const r = fn();
    if (r && typeof r.then === 'function') await r;
    n++;
    t = performance.now();
  }
  return { n, ms: t - t0 };
}

/**
 * `op` and its `base`, warmed up, then in alternating slices for `ms` in all. The ratio is the
 * median of the rounds' ratios (a burst of load elsewhere spoils one round, not the figure).
 */
async function pair(op, base, ms) {
  for (let i = 0; i < 20; i++) {
    await op();
    await base();
  }
  const rounds = 10;
  const a = { n: 0, ms: 0 };
  const b = { n: 0, ms: 0 };
  const ratios = [];
  for (let r = 0; r < rounds; r++) {
    const got = {};
    for (const [key, acc, fn] of r % 2 ? [['b', b, base], ['a', a, op]] : [['a', a, op], ['b', b, base]]) {
      const s = await slice(fn, ms / rounds / 2);
      acc.n += s.n;
      acc.ms += s.ms;
      got[key] = s.ms / s.n;
    }
    ratios.push(got.a / got.b);
  }
  ratios.sort((x, y) => x - y);
  return { us: (a.ms * 1000) / a.n, baseUs: (b.ms * 1000) / b.n, ops: a.n, baseOps: b.n, ratio: (ratios[rounds / 2 - 1] + ratios[rounds / 2]) / 2 };
}

const MAIL = (from, to, body) =>
  Buffer.from(`From: <${from}>\r\nTo: <${to}>\r\nSubject: micro\r\nMessage-ID: <micro@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${body}`);

/**
 * The figures, keyed by name: { title, us, opsPerSecond, baseline: { title, us }, ratio } (ratio:
 * the median over the rounds of us / baseline.us, lower is better). `root` is the repository (its
 * dist/ is used).
 */
export async function microFigures({ root, quick = false, log = () => undefined }) {
  const dist = (p) => import(join(root, 'dist', p));
  const { createCa, issueSmimeCertificate } = await dist('pki/index.js');
  const { encryptSync } = await dist('smime/encrypt.js');
  const { decryptSync } = await dist('smime/decrypt.js');
  const { prepareRecipient, prepareDecryptionKey, prepareSigner, prepareTrustStore, signDetached, verifyDetached } = await dist('smime/index.js');
  const pgp = await dist('openpgp/index.js');
  const ms = quick ? 600 : 2000;
  const content = randomBytes(4096);
  const figures = {};
  const figure = async (name, title, baseTitle, op, base) => {
    log(`micro ${name}: ${title}`);
    const p = await pair(op, base, ms);
    figures[name] = { title, us: round(p.us), opsPerSecond: round(1e6 / p.us), operations: p.ops, baseline: { title: baseTitle, us: round(p.baseUs), operations: p.baseOps }, ratio: round(p.ratio, 2) };
  };
  const check = (ok, what) => {
    if (!ok) throw new Error(`micro: ${what}`);
  };

  log('micro: keys (Postern CA, RSA-2048 and P-256 mailboxes, OpenPGP Ed25519/Cv25519 and RSA-3072)');
  const ca = await createCa({ commonName: 'Postern Micro CA' });
  const rsa = await issueSmimeCertificate({ ca, address: 'rsa@micro.example', keyType: 'rsa-2048' });
  const ec = await issueSmimeCertificate({ ca, address: 'ec@micro.example', keyType: 'ec-p256' });
  const rsaKey = createPrivateKey({ key: rsa.keyPkcs8, format: 'der', type: 'pkcs8' });
  const rsaPub = createPublicKey(rsaKey);
  const ecKey = createPrivateKey({ key: ec.keyPkcs8, format: 'der', type: 'pkcs8' });

  // S/MIME EnvelopedData.
  const to = prepareRecipient(rsa.certDer);
  const der = encryptSync(content, [to]);
  const key = prepareDecryptionKey(rsa.certDer, rsa.keyPkcs8);
  check(decryptSync(der, [key]).content.equals(content), 'encryptSync output does not decrypt to the content');
  const cek = randomBytes(32);
  const iv = randomBytes(16);
  const aesCbc = (k) => {
    const c = createCipheriv('aes-256-cbc', k, iv);
    return Buffer.concat([c.update(content), c.final()]);
  };
  await figure('smime-encrypt', 'S/MIME encrypt 4 KB → RSA-2048', 'publicEncrypt + AES-256-CBC', () => encryptSync(content, [to]), () => (publicEncrypt({ key: rsaPub, padding: constants.RSA_PKCS1_PADDING }, cek), aesCbc(cek)));
  const ecTo = prepareRecipient(ec.certDer);
  check(decryptSync(encryptSync(content, [ecTo]), [prepareDecryptionKey(ec.certDer, ec.keyPkcs8)]).content.equals(content), 'encryptSync output (P-256) does not decrypt to the content');
  const ecPub = createPublicKey(ecKey);
  await figure('smime-encrypt-ec', 'S/MIME encrypt 4 KB → EC P-256', 'P-256 ephemeral + ECDH + AES-256-CBC', () => encryptSync(content, [ecTo]), () => {
    const eph = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return aesCbc(diffieHellman({ privateKey: eph.privateKey, publicKey: ecPub }));
  });
  const wrapped = publicEncrypt({ key: rsaPub, padding: constants.RSA_PKCS1_PADDING }, cek);
  const sealed = aesCbc(cek);
  await figure('smime-decrypt', 'S/MIME decrypt 4 KB, RSA-2048', 'RSA private op + AES-256-CBC', () => decryptSync(der, [key]), () => {
    privateDecrypt({ key: rsaKey, padding: constants.RSA_NO_PADDING }, wrapped);
    const d = createDecipheriv('aes-256-cbc', cek, iv);
    return Buffer.concat([d.update(sealed), d.final()]);
  });

  // S/MIME SignedData (detached).
  const trust = prepareTrustStore([ca.certDer]);
  for (const [name, m, k] of [['rsa', rsa, rsaKey], ['ec', ec, ecKey]]) {
    const signer = prepareSigner(m.certDer, m.keyPkcs8, []);
    const sig = await signDetached(signer, content);
    const { signers } = await verifyDetached(sig, content, { trust, fromAddresses: [`${name}@micro.example`] });
    check(signers[0]?.status === 'valid', `signDetached (${name}) does not verify: ${JSON.stringify(signers[0])}`);
    const raw = () => sign('sha256', content, name === 'rsa' ? { key: k, padding: constants.RSA_PKCS1_PADDING } : k);
    await figure(`smime-sign-${name}`, `S/MIME sign 4 KB, ${name === 'rsa' ? 'RSA-2048' : 'EC P-256'}`, `crypto.sign ${name === 'rsa' ? 'RSA-2048' : 'P-256'}`, () => signDetached(signer, content), raw);
    if (name === 'rsa') {
      const rawSig = raw();
      const cert = new X509Certificate(m.certDer);
      const caKey = new X509Certificate(ca.certDer).publicKey;
      check(cert.verify(caKey) && verify('sha256', content, rsaPub, rawSig), 'the raw verification baseline fails');
      await figure('smime-verify-rsa', 'S/MIME verify 4 KB + chain, RSA', 'crypto.verify RSA + cert by CA P-256', () => verifyDetached(sig, content, { trust, fromAddresses: ['rsa@micro.example'] }), () => verify('sha256', content, rsaPub, rawSig) && cert.verify(caKey));
    }
  }

  // OpenPGP.
  const [alice, bob] = await Promise.all([pgp.generatePgpKey({ address: 'alice@micro.example' }), pgp.generatePgpKey({ address: 'bob@micro.example' })]);
  const pgpSigner = await pgp.preparePgpSigner(alice.secretKey);
  const toBob = await pgp.preparePgpRecipient(bob.publicKey);
  const bobKey = await pgp.preparePgpDecryptionKey(bob.secretKey);
  const mail = MAIL('alice@micro.example', 'bob@micro.example', `${'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(70)}\r\n`);
  const opened = await pgp.pgpOpenMessage(await pgp.pgpEncryptMessage(mail, [toBob], { signer: pgpSigner }), { keysFor: async () => [bobKey], verificationKeysFor: async () => [alice.publicKey] });
  check(opened.encryption?.status === 'decrypted' && opened.signatures?.[0]?.status === 'valid', `pgpEncryptMessage output does not open: ${JSON.stringify({ e: opened.encryption, s: opened.signatures })}`);
  const ed = generateKeyPairSync('ed25519').privateKey;
  const x = generateKeyPairSync('x25519');
  await figure('pgp-sign-encrypt', 'OpenPGP sign+encrypt 4 KB, 25519', 'Ed25519 sign + X25519 + AES-256', () => pgp.pgpEncryptMessage(mail, [toBob], { signer: pgpSigner }), () => {
    sign(null, mail, ed);
    const eph = generateKeyPairSync('x25519');
    const k = diffieHellman({ privateKey: eph.privateKey, publicKey: x.publicKey }).subarray(0, 32);
    const c = createCipheriv('aes-256-cfb', k, iv);
    return Buffer.concat([c.update(mail), c.final()]);
  });

  const carol = await pgp.generatePgpKey({ address: 'carol@micro.example', type: 'rsa', rsaBits: 3072 });
  const carolKey = await pgp.preparePgpDecryptionKey(carol.secretKey);
  const toCarol = await pgp.preparePgpRecipient(carol.publicKey);
  const small = MAIL('alice@micro.example', 'carol@micro.example', 'secret words\r\n');
  const toOpen = await pgp.pgpEncryptMessage(small, [toCarol]);
  const openCarol = () => pgp.pgpOpenMessage(toOpen, { keysFor: async () => [carolKey], verificationKeysFor: async () => [] });
  const r = await openCarol();
  check(r.encryption?.status === 'decrypted' && r.message.toString().includes('secret words'), `the RSA-3072 message does not decrypt: ${JSON.stringify(r.encryption)}`);
  const rsa3072 = generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey;
  const block = publicEncrypt({ key: createPublicKey(rsa3072), padding: constants.RSA_PKCS1_PADDING }, cek);
  await figure('pgp-rsa-decrypt', 'OpenPGP decrypt, RSA-3072', 'RSA-3072 private op', openCarol, () => privateDecrypt({ key: rsa3072, padding: constants.RSA_NO_PADDING }, block));

  return figures;
}

/** The figures as lines of the bench's report. */
export function formatMicro(figures) {
  const fs = Object.values(figures);
  const w = Math.max(...fs.map((f) => f.title.length));
  const bw = Math.max(...fs.map((f) => f.baseline.title.length));
  const out = [`${'micro figures (one core, in-process)'.padEnd(w + 2)}     µs/op   ${'baseline (same run)'.padEnd(bw)}    µs/op  ×baseline`];
  for (const f of fs) out.push(`  ${f.title.padEnd(w)} ${f.us.toFixed(1).padStart(9)}   ${f.baseline.title.padEnd(bw)} ${f.baseline.us.toFixed(1).padStart(8)}  ${f.ratio.toFixed(2).padStart(9)}`);
  return out;
}
