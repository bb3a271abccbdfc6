/** An image as found in a page, before resolution and caption checks. */
export interface RawImage {
  /** As written in the page: may be relative. */
  src: string;
  /** Alt text, entities decoded, whitespace not yet normalised. */
  alt: string;
}

/** What one crawled HTML page offers: its images and what they are resolved and licensed against. */
export interface PageImages {
  pageUrl: string;
  /** The page's `<base href>`, as written, or null. */
  base: string | null;
  /** A Creative Commons license URL the page links to, or null. */
  license: string | null;
  images: RawImage[];
}

const LICENSE_URL = /^(?:https?:)?\/\/(?:[a-z0-9-]+\.)?creativecommons\.org\/(?:licenses|publicdomain)\//i;

/** A Creative Commons license or public-domain dedication URL. */
export function isLicenseUrl(url: string): boolean {
  return LICENSE_URL.test(url);
}
