/** Small text helpers shared by the dashboard panels, the status log and `cah status`. */
import { oneLine as terminalLine } from '../text/sanitize.js';

/** One line of printable text: escape sequences, controls and bidi overrides removed, line breaks as a space. */
export function oneLine(text: string): string {
  return terminalLine(text).trim();
}

/** Cuts text to `width` columns, ending in "…" when something was cut. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  const chars = Array.from(text);
  if (chars.length <= width) return text;
  return chars.slice(0, width - 1).join('') + '…';
}

/** Keeps the end of the text (paths), starting with "…" when something was cut. */
export function truncateStart(text: string, width: number): string {
  if (width <= 0) return '';
  const chars = Array.from(text);
  if (chars.length <= width) return text;
  return '…' + chars.slice(chars.length - width + 1).join('');
}

/** Exactly `width` columns: truncated, then padded on the right (or left for numbers). */
export function fit(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  const cut = truncate(text, width);
  const pad = ' '.repeat(Math.max(0, width - Array.from(cut).length));
  return align === 'left' ? cut + pad : pad + cut;
}

/** 999, 1.2k, 34.5k, 1.2M: counts that stay within 5 columns. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '?';
  const abs = Math.abs(n);
  if (abs < 1000) return String(Math.round(n));
  const units = ['k', 'M', 'G', 'T'];
  let value = n;
  let unit = '';
  // 999.5 and up would print as "1000": move to the next unit instead.
  for (const u of units) {
    if (Math.abs(value) < 999.5) break;
    value /= 1000;
    unit = u;
  }
  return `${Math.abs(value) < 99.95 ? value.toFixed(1) : Math.round(value)}${unit}`;
}

/** Rates: one decimal below 10 so that slow workers do not read as 0. */
export function formatRate(n: number): string {
  if (!Number.isFinite(n)) return '?';
  return Math.abs(n) < 10 ? n.toFixed(1) : formatCount(n);
}

/** SI bytes: 512 B, 1.2 kB, 34 MB, 1.2 GB. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '?';
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let value = n;
  let i = 0;
  while (Math.abs(value) >= 1000 && i < units.length - 1) {
    value /= 1000;
    i++;
  }
  const digits = i === 0 || Math.abs(value) >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${units[i]}`;
}

/** 45s, 12m05s, 3h02m, 2d04h; "—" when unknown. */
export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** Coarse age for narrow columns: 3s, 12m, 5h, 2d. */
export function formatAge(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function formatPercent(fraction: number): string {
  return Number.isFinite(fraction) ? `${Math.round(fraction * 100)}%` : '?';
}
