/**
 * Text from crawled pages and from workers is hostile: it may carry ANSI/OSC escape sequences
 * (recolour, retitle, hyperlink or clear a terminal), other control characters, bidi overrides
 * that make text read differently from what it is, and TAB/CR/LF that forge rows in line formats.
 * Every text view (extract's TSV, the dashboard) shows it through `oneLine`.
 */

// ESC [ … final byte (CSI), ESC ] … BEL or ESC \ (OSC), ESC P/X/^/_ … ESC \ (DCS, SOS, PM, APC), or ESC and one character.
const ESCAPE_SEQUENCE = /\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|[\s\S]?)|\u009b[0-?]*[ -/]*[@-~]?/g;
// C0 and C1 controls, DEL, and the bidi embeddings, overrides, isolates and marks.
const CONTROL = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const WHITESPACE_CONTROL = /[\t\n\r\v\f\u0085\u2028\u2029]+/g;

/** The text on one line, safe for a terminal: escape sequences and controls removed, line breaks and tabs as one space. */
export function oneLine(text: string): string {
  return text.replace(ESCAPE_SEQUENCE, '').replace(WHITESPACE_CONTROL, ' ').replace(CONTROL, '');
}
