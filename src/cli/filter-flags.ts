import type { Logger } from 'pino';
import { PassThroughFilter, type PairFilter } from '../filter/filter.js';
import { CliError } from './errors.js';

export interface FilterFlags {
  model?: string;
  threshold: number;
  batchSize: number;
  maxWaitMs: number;
  languages?: string;
  executionProvider: string;
}

export interface OpenedFilter {
  filter: PairFilter;
  extraColumns: string[];
  embeddingDim: number | null;
}

/** The CLIP filter when --model is given (ONNX Runtime loads only then), else the pass-through. */
export async function openFilter(flags: FilterFlags, logger: Logger): Promise<OpenedFilter> {
  if (!flags.model) {
    logger.warn('no --model: every downloaded pair is kept (pass-through filter)');
    return { filter: new PassThroughFilter(), extraColumns: [], embeddingDim: null };
  }
  throw new CliError(`--model ${flags.model}: the CLIP filter is not part of this build yet; run without --model to keep every pair`);
}
