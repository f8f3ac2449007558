// A problem with what the caller sent (HTTP 422 at the server, exit 1 in the CLI). `field` names
// the offending part of the request, e.g. "sequences[3]".
export class InputError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'InputError';
  }
}
