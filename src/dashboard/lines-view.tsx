import { Box, Text, Transform } from 'ink';
import { memo } from 'react';
import { colourWanted, styleLine } from './ansi.js';
import { sameLines, type Line } from './views/line.js';

const COLOUR = colourWanted();

export interface LinesViewProps {
  lines: readonly Line[];
  width: number;
}

/**
 * Draws pre-built lines, already fitted to `width`. ink lays out a blank block of the same size
 * and <Transform> puts the real lines in at output time: ink caches the measurement of every
 * distinct text it lays out and never evicts (vadimdemedes/ink#986), which for a dashboard that
 * changes ten times a second is a leak; a blank block of fixed size is measured once. One text
 * node a panel also keeps React's and Yoga's work per frame small. Memoised on the lines'
 * content, so an unchanged panel costs no React work at all.
 */
export const LinesView = memo(
  function LinesView({ lines, width }: LinesViewProps) {
    const styled = lines.map((l) => styleLine(l, COLOUR));
    const transform = (_blank: string, index: number): string => styled[index] ?? '';
    if (lines.length === 0) return null;
    return (
      <Box width={width} flexShrink={0}>
        <Transform transform={transform}>
          <Text>{blankBlock(width, lines.length)}</Text>
        </Transform>
      </Box>
    );
  },
  (a, b) => a.width === b.width && sameLines(a.lines, b.lines),
);

const blanks = new Map<string, string>();

/** `height` lines of `width` spaces: the same few strings every frame. */
function blankBlock(width: number, height: number): string {
  const key = `${width}x${height}`;
  let block = blanks.get(key);
  if (block === undefined) {
    block = Array.from({ length: height }, () => ' '.repeat(width)).join('\n');
    blanks.set(key, block);
  }
  return block;
}
