const SPARK_CHARS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'] as const;

/**
 * The last `width` values as block characters scaled to their maximum; fewer values than width
 * leave blanks on the left, so time always runs to the right edge.
 */
export function sparkline(values: readonly number[], width: number): string {
  if (width <= 0) return '';
  const shown = values.slice(-width).map((v) => (Number.isFinite(v) && v > 0 ? v : 0));
  const max = Math.max(0, ...shown);
  const bars = shown.map((v) => {
    if (max === 0) return SPARK_CHARS[0];
    return SPARK_CHARS[Math.min(SPARK_CHARS.length - 1, Math.floor((v / max) * SPARK_CHARS.length))];
  });
  return ' '.repeat(width - bars.length) + bars.join('');
}

/** A bar of `width` cells filled to `fraction` (0..1). */
export function progressBar(fraction: number, width: number): string {
  if (width <= 0) return '';
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const filled = Math.round(f * width);
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}
