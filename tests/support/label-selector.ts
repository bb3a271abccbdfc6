/**
 * Hetzner's label selector language, for the API stand-in: `k=v` / `k==v`, `k!=v`, `k`, `!k`,
 * `k in (v1,v2)`, `k notin (v1,v2)`; a comma outside parentheses is AND.
 */
export type LabelPredicate = (labels: Record<string, string>) => boolean;

export class LabelSelectorError extends Error {}

/** Splits on commas that are not inside parentheses. */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) throw new LabelSelectorError(`unbalanced ")" in "${selector}"`);
    if (ch === ',' && depth === 0) {
      terms.push(current.trim());
      current = '';
    } else current += ch;
  }
  if (depth !== 0) throw new LabelSelectorError(`unbalanced "(" in "${selector}"`);
  terms.push(current.trim());
  return terms;
}

const KEY = '[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?';
const VALUE = '[A-Za-z0-9._-]*';

function parseTerm(term: string): LabelPredicate {
  let m: RegExpMatchArray | null;
  if ((m = term.match(new RegExp(`^(${KEY})\\s+(in|notin)\\s+\\(([^)]*)\\)$`)))) {
    const key = m[1]!;
    const values = m[4]!.split(',').map((v) => v.trim());
    if (values.some((v) => !new RegExp(`^${VALUE}$`).test(v))) throw new LabelSelectorError(`invalid value in "${term}"`);
    return m[3] === 'in' ? (l) => key in l && values.includes(l[key]!) : (l) => !(key in l) || !values.includes(l[key]!);
  }
  if ((m = term.match(new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`)))) {
    const [key, op, value] = [m[1]!, m[3]!, m[4]!];
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
  }
  if ((m = term.match(new RegExp(`^!\\s*(${KEY})$`)))) {
    const key = m[1]!;
    return (l) => !(key in l);
  }
  if ((m = term.match(new RegExp(`^(${KEY})$`)))) {
    const key = m[1]!;
    return (l) => key in l;
  }
  throw new LabelSelectorError(`invalid label selector term "${term}"`);
}

export function parseLabelSelector(selector: string): LabelPredicate {
  const predicates = splitTerms(selector).map(parseTerm);
  return (labels) => predicates.every((p) => p(labels));
}
