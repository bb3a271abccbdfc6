// Original file: proto/cah.proto


export interface Sample {
  'key'?: (string);
  'url'?: (string);
  'caption'?: (string);
  'pageUrl'?: (string);
  'license'?: (string);
  'status'?: (string);
  'errorMessage'?: (string);
  'width'?: (number);
  'height'?: (number);
  'originalWidth'?: (number);
  'originalHeight'?: (number);
  'sha256'?: (string);
  'jpeg'?: (Buffer | Uint8Array | string);
  'downloadMs'?: (number);
  'resizeMs'?: (number);
  /**
   * Downloads tried for this sample (1 + retries of transient failures).
   */
  'downloadAttempts'?: (number);
  /**
   * The image's EXIF tags as a JSON object, when the run asked for them ('' otherwise).
   */
  'exif'?: (string);
}

export interface Sample__Output {
  'key': (string);
  'url': (string);
  'caption': (string);
  'pageUrl': (string);
  'license': (string);
  'status': (string);
  'errorMessage': (string);
  'width': (number);
  'height': (number);
  'originalWidth': (number);
  'originalHeight': (number);
  'sha256': (string);
  'jpeg': (Buffer);
  'downloadMs': (number);
  'resizeMs': (number);
  /**
   * Downloads tried for this sample (1 + retries of transient failures).
   */
  'downloadAttempts': (number);
  /**
   * The image's EXIF tags as a JSON object, when the run asked for them ('' otherwise).
   */
  'exif': (string);
}
