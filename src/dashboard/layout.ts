/** Where each panel goes for a terminal of a given size: a pure function, so it is testable. */
export interface DashboardLayout {
  width: number;
  /** Shards|filter and errors|output side by side (80 columns and wider). */
  twoColumns: boolean;
  leftWidth: number;
  rightWidth: number;
  /** Lines of sparklines (0: the throughput panel is left out). */
  throughputLines: number;
  /** Lines for the actors panel (or the help panel that replaces it), title and column header included. */
  actorLines: number;
  /** Error messages shown (0: the errors panel is left out). */
  errorRows: number;
  output: boolean;
  /** A blank line between sections, when the terminal is tall enough to afford it. */
  spacing: boolean;
}

export const COLUMN_GAP = 2;
export const SHARDS_LINES = 3;
export const FILTER_LINES = 5;
export const OUTPUT_LINES = 3;
const TWO_COLUMN_MIN_WIDTH = 80;
const ACTORS_MIN_LINES = 4;
const TALL_ROWS = 40;

/**
 * Plans the panels for `columns`×`rows`. The frame stays one line shorter than the terminal: ink
 * clears the whole screen on every frame that fills it, which flickers and costs.
 */
export function planLayout(columns: number, rows: number): DashboardLayout {
  const width = Math.max(20, Math.floor(columns));
  const height = Math.max(8, Math.floor(rows)) - 1;
  const twoColumns = width >= TWO_COLUMN_MIN_WIDTH;
  const leftWidth = twoColumns ? Math.floor((width - COLUMN_GAP) / 2) : width;
  const rightWidth = twoColumns ? width - COLUMN_GAP - leftWidth : width;
  const spacing = rows >= TALL_ROWS;
  // A tall terminal gets more error messages and one full-width sparkline per series.
  const wantedErrors = rows >= TALL_ROWS ? 8 : 3;
  const sparkRows = twoColumns && rows < TALL_ROWS ? 2 : 4;

  const plan = { throughput: true, errors: true, output: true };
  const sections = (): number[] => {
    const top = twoColumns ? [Math.max(SHARDS_LINES, FILTER_LINES)] : [SHARDS_LINES, FILTER_LINES];
    const throughput = plan.throughput ? [1 + sparkRows] : [];
    const bottom = twoColumns
      ? plan.errors || plan.output
        ? [Math.max(plan.errors ? 1 + wantedErrors : 0, plan.output ? OUTPUT_LINES : 0)]
        : []
      : [...(plan.errors ? [1 + wantedErrors] : []), ...(plan.output ? [OUTPUT_LINES] : [])];
    return [...top, ...throughput, ...bottom];
  };
  // Header and footer, the sections, the actors panel, and the blank lines between them.
  const used = (): number => {
    const s = sections();
    return 2 + s.reduce((a, b) => a + b, 0) + (spacing ? s.length + 2 : 0);
  };
  const dropOrder: (keyof typeof plan)[] = twoColumns ? ['throughput', 'output'] : ['throughput', 'output', 'errors'];
  for (const key of dropOrder) {
    if (height - used() >= ACTORS_MIN_LINES) break;
    plan[key] = false;
    // Side by side, errors and output share their lines: dropping one alone saves nothing.
    if (twoColumns && key === 'output') plan.errors = false;
  }
  return {
    width,
    twoColumns,
    leftWidth,
    rightWidth,
    throughputLines: plan.throughput ? sparkRows : 0,
    actorLines: Math.max(0, height - used()),
    errorRows: plan.errors ? wantedErrors : 0,
    output: plan.output,
    spacing,
  };
}
