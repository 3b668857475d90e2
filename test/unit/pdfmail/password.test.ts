/**
 * The PDF password generator: its alphabet has no look-alikes, its format reads aloud in groups,
 * it has at least 80 bits, and its characters come out uniformly (a chi-square test over many
 * draws; a `byte % 31` generator would fail it).
 */
import { describe, expect, it } from 'vitest';
import { newPdfPassword, PDF_PASSWORD_ALPHABET, PDF_PASSWORD_ENTROPY_BITS, PDF_PASSWORD_LENGTH } from '../../../src/pdfmail/password.js';

describe('newPdfPassword', () => {
  it('uses lower case letters and digits without look-alikes (0 o O, 1 l I i)', () => {
    expect(new Set(PDF_PASSWORD_ALPHABET).size).toBe(PDF_PASSWORD_ALPHABET.length);
    for (const c of '0oO1lIi') expect(PDF_PASSWORD_ALPHABET).not.toContain(c);
    expect(PDF_PASSWORD_ALPHABET).toMatch(/^[a-z2-9]+$/);
    expect(PDF_PASSWORD_ALPHABET).toHaveLength(31);
  });

  it('has at least 80 bits of entropy, and the length that gives it', () => {
    expect(PDF_PASSWORD_ENTROPY_BITS).toBeGreaterThanOrEqual(80);
    expect(PDF_PASSWORD_ENTROPY_BITS).toBeCloseTo(PDF_PASSWORD_LENGTH * Math.log2(31), 10);
    // One character fewer would not do: the length is the shortest past 80 bits.
    expect((PDF_PASSWORD_LENGTH - 1) * Math.log2(PDF_PASSWORD_ALPHABET.length)).toBeLessThan(80);
  });

  it('groups the characters by four with hyphens, drawn only from the alphabet', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const p = newPdfPassword();
      expect(p).toMatch(/^[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]$/);
      const chars = p.replace(/-/g, '');
      expect(chars).toHaveLength(PDF_PASSWORD_LENGTH);
      for (const c of chars) expect(PDF_PASSWORD_ALPHABET).toContain(c);
      seen.add(p);
    }
    expect(seen.size).toBe(1000);
  });

  it('draws every character with the same probability (chi-square, 30 degrees of freedom)', () => {
    const counts = new Map<string, number>([...PDF_PASSWORD_ALPHABET].map((c) => [c, 0]));
    const draws = 4000;
    for (let i = 0; i < draws; i++) for (const c of newPdfPassword().replace(/-/g, '')) counts.set(c, counts.get(c)! + 1);
    const n = draws * PDF_PASSWORD_LENGTH;
    const expected = n / PDF_PASSWORD_ALPHABET.length;
    const chi2 = [...counts.values()].reduce((s, o) => s + (o - expected) ** 2 / expected, 0);
    // P(chi2 > 80 | 30 df, uniform) ≈ 2e-6. A `byte % 31` generator gives the first 8 characters
    // 9/256 instead of 8/256: over 68 000 draws that is a chi-square of about 190.
    expect(chi2).toBeLessThan(80);
    // And no character is missing or hugely over-represented.
    for (const o of counts.values()) expect(Math.abs(o - expected)).toBeLessThan(expected * 0.15);
  });
});
