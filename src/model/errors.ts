// A checkpoint problem the user must fix on disk (bad config, vocab, or weights file). The message is
// one line that names the file (and tensor) so it reads well in a CLI error or an HTTP 500 body.
export class CheckpointError extends Error {
  readonly file: string;
  readonly tensor?: string;

  constructor(file: string, problem: string, tensor?: string) {
    const where = tensor === undefined ? file : `${file}: tensor "${tensor}"`;
    // Collapse newlines so callers can rely on a single-line message.
    super(`${where}: ${problem}`.replace(/\s*\n\s*/g, ' '));
    this.name = 'CheckpointError';
    this.file = file;
    if (tensor !== undefined) this.tensor = tensor;
  }
}

/** `[32,16]`: the compact shape notation used in every shape message. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
