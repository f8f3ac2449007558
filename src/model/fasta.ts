// FASTA records: a `>` header line (the id is its first word) followed by sequence lines.
export interface FastaRecord {
  id: string;
  description: string;
  sequence: string;
}

export class FastaError extends Error {
  constructor(
    readonly line: number,
    problem: string,
  ) {
    super(`FASTA line ${line}: ${problem}`);
    this.name = 'FastaError';
  }
}

/**
 * Parses FASTA text. Sequence lines are joined without whitespace; residue validation is the
 * tokenizer's job. Ids must be unique because outputs are keyed by id.
 */
export function parseFasta(text: string): FastaRecord[] {
  const records: FastaRecord[] = [];
  const seen = new Map<string, number>();
  let current: { record: FastaRecord; line: number; parts: string[] } | null = null;
  const finish = () => {
    if (!current) return;
    current.record.sequence = current.parts.join('');
    if (current.record.sequence.length === 0) throw new FastaError(current.line, `record "${current.record.id}" has no sequence`);
    records.push(current.record);
  };
  text.split(/\r?\n/).forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line.length === 0 || line.startsWith(';')) return;
    if (line.startsWith('>')) {
      finish();
      const description = line.slice(1).trim();
      const id = description.split(/\s+/)[0] ?? '';
      if (!id) throw new FastaError(lineNo, 'header without an id');
      const previous = seen.get(id);
      if (previous !== undefined) throw new FastaError(lineNo, `duplicate id "${id}" (first at line ${previous})`);
      seen.set(id, lineNo);
      current = { record: { id, description, sequence: '' }, line: lineNo, parts: [] };
      return;
    }
    if (!current) throw new FastaError(lineNo, 'sequence data before the first ">" header');
    current.parts.push(line.replace(/\s+/g, ''));
  });
  finish();
  if (records.length === 0) throw new FastaError(1, 'no records found');
  return records;
}
