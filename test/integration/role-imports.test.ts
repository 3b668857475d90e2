/**
 * Issue 15: each role has its own entry point and loads only what it needs. The module graph of
 * the built entry points (dist/roles/*.js, what the supervisor starts) is walked statically, every
 * `import`, `export … from`, `import()` and CommonJS `require` followed; smtpd must reach no keystore
 * module, no kek/ code, no SQLite and no PKCS#11 binding. The portal (issue 17) may reach the
 * keystore's KEK-free files — public.js, pdf-verifier.js, scrypt.js, webmail-crypto.js,
 * portal-*.js (its store) and sql/*.js (the drivers it runs on) — and SQLite for portal.db, but never the keystore's index, store*.js,
 * kek/ or PKCS#11. A computed `import()` or `require()` would escape this check, so none may be
 * reachable. The runtime side (which native modules the running processes mapped, which files
 * they can open) is in role-isolation.test.ts.
 *
 * Reads dist/: run `npm run build` first, as for every integration test.
 */
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const DIST = resolve(import.meta.dirname, '../../dist');

interface Graph {
  /** Modules of dist/, relative to it. */
  files: Set<string>;
  /** Bare specifiers: packages and node: built-ins. */
  packages: Set<string>;
  /** Modules with an import() whose specifier is not a string literal. */
  computed: string[];
}

function graph(entry: string): Graph {
  const g: Graph = { files: new Set(), packages: new Set(), computed: [] };
  const walk = (file: string) => {
    const rel = relative(DIST, file);
    if (g.files.has(rel)) return;
    g.files.add(rel);
    const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
    const specs: string[] = [];
    const visit = (n: ts.Node) => {
      if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) specs.push(n.moduleSpecifier.text);
      // import(x), and CommonJS loads: require(x) or createRequire(url)(x) (how pkcs11js is loaded).
      const loads =
        ts.isCallExpression(n) &&
        (n.expression.kind === ts.SyntaxKind.ImportKeyword ||
          (ts.isIdentifier(n.expression) && n.expression.text === 'require') ||
          (ts.isCallExpression(n.expression) && ts.isIdentifier(n.expression.expression) && n.expression.expression.text === 'createRequire'));
      if (loads) {
        const a = n.arguments[0];
        if (a && ts.isStringLiteralLike(a)) specs.push(a.text);
        else g.computed.push(rel);
      }
      ts.forEachChild(n, visit);
    };
    visit(src);
    for (const s of specs) {
      if (s.startsWith('.')) walk(resolve(dirname(file), s));
      else g.packages.add(s);
    }
  };
  walk(resolve(DIST, entry));
  return g;
}

const keystoreModules = (g: Graph) => [...g.files].filter((f) => f.startsWith('keystore/')).sort();
const forbiddenPackages = (g: Graph) => [...g.packages].filter((p) => /^(better-sqlite3|pkcs11js)(\/|$)/.test(p)).sort();
/** The keystore's KEK-free files: what the portal may load (sql/: the database drivers its store runs on, issue 19). */
const KEK_FREE = /^keystore\/(public|pdf-verifier|scrypt|webmail-crypto|portal-[a-z-]+|sql\/[a-z-]+)\.js$/;

describe('the module graph of each role entry point (dist/roles)', () => {
  it('smtpd loads no keystore code, no KEK, no SQLite, no PKCS#11', () => {
    const g = graph('roles/smtpd.js');
    expect(g.files.size).toBeGreaterThan(5);
    expect(keystoreModules(g)).toEqual([]);
    expect([...g.files].filter((f) => f.includes('/kek/'))).toEqual([]);
    expect(forbiddenPackages(g)).toEqual([]);
    expect(g.computed).toEqual([]);
  });

  it('the portal loads only the keystore\'s KEK-free files and SQLite for portal.db: no index, no store, no KEK, no PKCS#11', () => {
    const g = graph('roles/portal.js');
    expect(g.files.size).toBeGreaterThan(5);
    const keystore = keystoreModules(g);
    expect(keystore.filter((f) => !KEK_FREE.test(f))).toEqual([]);
    // The oracle: what it must have is there.
    expect(keystore).toEqual(expect.arrayContaining(['keystore/public.js', 'keystore/portal-db.js', 'keystore/portal-store.js', 'keystore/sql/postgres.js']));
    expect([...g.files].filter((f) => f.includes('/kek/') || /(^|\/)store[^/]*\.js$/.test(f) || f === 'keystore/index.js')).toEqual([]);
    expect(forbiddenPackages(g)).toEqual(['better-sqlite3']);
    expect(g.computed).toEqual([]);
  });

  it('smtpd loads no crypto module either (it never parses a message)', () => {
    const g = graph('roles/smtpd.js');
    expect([...g.files].filter((f) => /^(smime|openpgp|pki|mime|worker|directory\/(?!ldap-filter))/.test(f))).toEqual([]);
    expect([...g.packages].filter((p) => /^(openpgp|pkijs|asn1js|ldapts)$/.test(p))).toEqual([]);
  });

  it('the walk sees what it should: the worker reaches the KEK, SQLite and PKCS#11', () => {
    const g = graph('roles/worker.js');
    expect(keystoreModules(g)).toEqual(expect.arrayContaining(['keystore/index.js', 'keystore/kek/index.js', 'keystore/kek/pkcs11.js']));
    expect(forbiddenPackages(g)).toEqual(['better-sqlite3', 'pkcs11js']);
  });
});
