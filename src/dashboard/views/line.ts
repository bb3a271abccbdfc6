/**
 * The panels are built as lines of styled segments: plain data that the ink components draw and
 * `cah status` prints as text, and that tests read without a terminal.
 */
export type Tone = 'title' | 'good' | 'warn' | 'bad' | 'dim' | 'strong' | 'key';

export interface Segment {
  text: string;
  tone?: Tone;
}

export type Line = readonly Segment[];

export function seg(text: string, tone?: Tone): Segment {
  return tone === undefined ? { text } : { text, tone };
}

export function lineText(line: Line): string {
  return line.map((s) => s.text).join('');
}

export function lineWidth(line: Line): number {
  return line.reduce((n, s) => n + Array.from(s.text).length, 0);
}

/** Cuts a line to `width` columns, ending in "…" when something was cut. */
export function fitLine(line: Line, width: number): Line {
  if (lineWidth(line) <= width) return line;
  const out: Segment[] = [];
  let left = Math.max(0, width - 1);
  for (const s of line) {
    if (left <= 0) break;
    const chars = Array.from(s.text);
    const text = chars.slice(0, left).join('');
    out.push(s.tone === undefined ? { text } : { text, tone: s.tone });
    left -= Math.min(left, chars.length);
  }
  if (width > 0) out.push({ text: '…' });
  return out;
}

/** A panel's first line: its name, then a summary. */
export function titleLine(title: string, ...summary: Segment[]): Line {
  return summary.length === 0 ? [seg(title, 'title')] : [seg(title, 'title'), seg(' '), ...summary];
}

export function sameLines(a: readonly Line[], b: readonly Line[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) {
      if (x[j]!.text !== y[j]!.text || x[j]!.tone !== y[j]!.tone) return false;
    }
  }
  return true;
}
