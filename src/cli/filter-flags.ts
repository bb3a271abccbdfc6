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
  if (!['auto', 'cpu', 'cuda'].includes(flags.executionProvider)) {
    throw new CliError(`--execution-provider must be auto, cpu or cuda, got "${flags.executionProvider}"`);
  }
  const { ClipFilter } = await import('../filter/clip-filter.js');
  const languages = flags.languages ? flags.languages.split(',').map((l) => l.trim()).filter(Boolean) : undefined;
  const filter = await ClipFilter.create({
    modelDir: flags.model,
    threshold: flags.threshold,
    executionProvider: flags.executionProvider as 'auto' | 'cpu' | 'cuda',
    ...(languages ? { languages } : {}),
    log: (msg: string) => logger.info(msg),
  });
  return { filter, extraColumns: languages ? ['language'] : [], embeddingDim: filter.embeddingDim };
}
