// Just enough CSV (RFC 4180) for mutation tables: quoted fields with "" escapes, commas and line
// breaks inside quotes, LF or CRLF rows. Written back with quotes only where a field needs them,
// so an input without quotes comes back byte-for-byte apart from the added column.
import { InputError } from './errors.js';

export interface CsvTable {
  header: string[];
  rows: string[][];
}

/** Parses CSV text whose first row is the header. Every row must have the header's field count. */
export function parseCsv(text: string, source = 'CSV'): CsvTable {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // a UTF-8 BOM (spreadsheet exports) is not data
  const endRecord = () => {
    record.push(field);
    // A blank line (one empty field) is skipped rather than read as a row of empty cells.
    if (!(record.length === 1 && record[0] === '')) records.push(record);
    record = [];
    field = '';
  };
  for (; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') {
        quoted = false;
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
    } else if (ch === '"' && field === '') {
      quoted = true;
    } else if (ch === ',') {
      record.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
    } else {
      field += ch;
    }
  }
  if (quoted) throw new InputError(source, `unterminated quoted field (line ${line})`);
  if (field !== '' || record.length > 0) endRecord();
  if (records.length === 0) throw new InputError(source, 'is empty (no header row)');
  const [header, ...rows] = records;
  rows.forEach((row, r) => {
    if (row.length !== header.length) {
      throw new InputError(source, `row ${r + 1} has ${row.length} fields, the header has ${header.length}`);
    }
  });
  return { header, rows };
}

function quoteField(field: string): string {
  return /[",\r\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

/** CSV text of the table, LF line endings, ending with a newline. */
export function formatCsv(table: CsvTable): string {
  return [table.header, ...table.rows].map((row) => row.map(quoteField).join(',')).join('\n') + '\n';
}
