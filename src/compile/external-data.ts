// ONNX external data: weights live in one binary file beside the graph, so graphs of any size
// stay under protobuf's 2 GB limit and ONNX Runtime can map the weights instead of parsing them.
import { closeSync, openSync, writeSync } from 'node:fs';
import { basename } from 'node:path';

/** ORT reads external tensors at any offset; page alignment lets it memory-map them. */
const ALIGNMENT = 4096;

export class ExternalDataWriter {
  readonly fileName: string;
  private readonly fd: number;
  private position = 0;

  constructor(readonly path: string) {
    this.fileName = basename(path);
    this.fd = openSync(path, 'w');
  }

  append(bytes: Uint8Array): { offset: number; length: number } {
    const padding = (ALIGNMENT - (this.position % ALIGNMENT)) % ALIGNMENT;
    if (padding) this.writeAll(new Uint8Array(padding));
    const offset = this.position;
    this.writeAll(bytes);
    return { offset, length: bytes.byteLength };
  }

  get size(): number {
    return this.position;
  }

  close(): void {
    closeSync(this.fd);
  }

  private writeAll(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.byteLength) done += writeSync(this.fd, bytes, done, bytes.byteLength - done, this.position + done);
    this.position += bytes.byteLength;
  }
}
