import { eld } from 'eld';

interface EldWithLoader {
  load(size: string): Promise<void | true>;
  detect(text: string): { language: string };
}

/** Caption language detection with eld (its n-gram data ships in the package: works offline). */
export class LanguageDetector {
  private constructor(private readonly detector: { detect(text: string): { language: string } }) {}

  static async load(): Promise<LanguageDetector> {
    // The package root is eld's dynamic entry: instances start empty and load a database by size.
    const instance = eld.newInstance() as unknown as EldWithLoader;
    if ((await instance.load('medium')) !== true) throw new Error('eld could not load its medium n-gram database');
    return new LanguageDetector(instance);
  }

  /** ISO 639-1 code, or null when eld cannot tell (empty, emoji only, …). */
  detect(text: string): string | null {
    return this.detector.detect(text).language || null;
  }
}
