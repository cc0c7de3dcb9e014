/** Small statistics and formatting helpers for the benchmark report. */

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile, p in 0…100. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1];
}

export function fmt(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return "n/a";
  return x.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** "1,234 (1,100–1,300)": median and range of the runs. */
export function medRange(xs: number[], digits = 0): string {
  if (xs.length === 0) return "n/a";
  if (xs.length === 1) return fmt(xs[0], digits);
  return `${fmt(median(xs), digits)} (${fmt(Math.min(...xs), digits)}–${
    fmt(Math.max(...xs), digits)
  })`;
}

export function pass(ok: boolean): string {
  return ok ? "✅ met" : "❌ missed";
}

/** Alternates the order of `items` run by run: ABAB… then BABA…, so drift hits both. */
export function alternate<T>(items: T[], run: number): T[] {
  return run % 2 === 0 ? items : [...items].reverse();
}
