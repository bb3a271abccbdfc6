/** One figure of `npm run bench`: our throughput against a baseline measured in the same run. */
export interface BenchResult {
  name: string;
  /** Our figure, e.g. 123.4 */
  value: number;
  unit: string;
  /** What we compare against, e.g. "gzip -dc of the same file". */
  baseline: string;
  baselineValue: number;
  /** value / baselineValue (or baseline / value where smaller is better; say so in notes). */
  ratio: number;
  /** The target as text, e.g. ">= 1.0x". */
  target: string;
  met: boolean;
  notes: string;
}
