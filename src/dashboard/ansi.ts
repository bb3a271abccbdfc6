import { lineText, type Line, type Tone } from './views/line.js';

/** SGR codes that open and close each tone. */
const TONE_SGR: Record<Tone, [string, string]> = {
  title: ['\x1b[1;36m', '\x1b[22;39m'],
  good: ['\x1b[32m', '\x1b[39m'],
  warn: ['\x1b[33m', '\x1b[39m'],
  bad: ['\x1b[31m', '\x1b[39m'],
  dim: ['\x1b[2m', '\x1b[22m'],
  strong: ['\x1b[1m', '\x1b[22m'],
  key: ['\x1b[1;7m', '\x1b[22;27m'],
};

/** https://no-color.org, and FORCE_COLOR=0 as chalk reads it. */
export function colourWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return !env['NO_COLOR'] && env['FORCE_COLOR'] !== '0' && env['TERM'] !== 'dumb';
}

/** A line as terminal text: each toned segment wrapped in its SGR codes (or plain text). */
export function styleLine(line: Line, colour: boolean): string {
  if (!colour) return lineText(line);
  let out = '';
  for (const s of line) {
    if (s.tone === undefined || s.text === '') out += s.text;
    else out += TONE_SGR[s.tone][0] + s.text + TONE_SGR[s.tone][1];
  }
  return out;
}
