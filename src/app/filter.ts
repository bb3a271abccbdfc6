import { METADATA_COLUMNS } from '../output/sample.js';
import type { Logger } from 'pino';
import { PassThroughFilter, type ExtraColumn, type PairFilter } from '../filter/pair-filter.js';
import { existsSync } from 'node:fs';
import type { ClipFilter } from '../filter/clip-filter.js';
import type { ExtraScorerSpec } from '../filter/extra-scorers.js';
import { CahError } from '../errors.js';

/** A filter that cannot be opened as configured (a missing model or scorer file, a bad flag). */
export class FilterConfigError extends CahError {
  constructor(message: string) {
    super('CAH_FILTER_CONFIG', message);
  }
}

export interface FilterFlags {
  model?: string;
  threshold: number;
  batchSize: number;
  maxWaitMs: number;
  languages?: string;
  scorer?: string[];
  executionProvider: string;
  /** Per-image decode limit of the coordinator's preprocessing, whole seconds. */
  decodeTimeoutS?: number;
}

/** `--scorer NAME=MODEL.onnx[:MAX]`: an extra column from an ONNX head on the image embedding. */
export function parseScorerFlag(value: string): ExtraScorerSpec {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.+?)(?::(-?\d+(?:\.\d+)?))?$/.exec(value);
  if (!match) throw new FilterConfigError(`--scorer "${value}": expected NAME=MODEL.onnx or NAME=MODEL.onnx:MAX (e.g. watermark=./watermark.onnx:0.8)`);
  const [, name, modelPath, max] = match;
  // A scorer's column beside the dataset's own (or the language column) would shadow it in the tar's .json.
  if (METADATA_COLUMNS.some((c) => c.name === name) || name === 'language') {
    throw new FilterConfigError(`--scorer ${name}: the dataset has a column of that name; choose another`);
  }
  if (!existsSync(modelPath!)) throw new FilterConfigError(`--scorer ${name}: no such model file ${modelPath}`);
  return { name: name!, modelPath: modelPath!, ...(max !== undefined ? { threshold: Number(max) } : {}) };
}

export interface OpenedFilter {
  filter: PairFilter;
  extraColumns: ExtraColumn[];
  embeddingDim: number | null;
}

/** The CLIP filter when --model is given (ONNX Runtime loads only then), else the pass-through. */
export async function openFilter(flags: FilterFlags, logger: Logger): Promise<OpenedFilter> {
  if (!flags.model) {
    if (flags.scorer?.length || flags.languages) throw new FilterConfigError('--scorer and --languages need a CLIP model: add --model DIR');
    logger.warn('no --model: every downloaded pair is kept (pass-through filter)');
    return { filter: new PassThroughFilter(), extraColumns: [], embeddingDim: null };
  }
  if (!['auto', 'cpu', 'cuda'].includes(flags.executionProvider)) {
    throw new FilterConfigError(`--execution-provider must be auto, cpu or cuda, got "${flags.executionProvider}"`);
  }
  const clip = await import('../filter/clip-filter.js');
  const scorers = flags.scorer?.map(parseScorerFlag);
  const languages = flags.languages ? flags.languages.split(',').map((l) => l.trim()).filter(Boolean) : undefined;
  // What can go wrong here is the model directory or a scorer file: one line, no stack trace.
  let filter: ClipFilter;
  try {
    filter = await clip.ClipFilter.create({
      modelDir: flags.model,
      threshold: flags.threshold,
      executionProvider: flags.executionProvider as 'auto' | 'cpu' | 'cuda',
      ...(flags.decodeTimeoutS ? { decodeTimeoutSeconds: flags.decodeTimeoutS } : {}),
      ...(languages ? { languages } : {}),
      ...(scorers?.length ? { extraScorers: scorers } : {}),
      log: (msg: string) => logger.info(msg),
    });
  } catch (err) {
    throw new FilterConfigError(`cannot load the CLIP model: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { filter, extraColumns: filter.extraColumns, embeddingDim: filter.embeddingDim };
}
