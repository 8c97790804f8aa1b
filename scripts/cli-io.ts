// What the CLIs (npm run verify, check, lab) share to run as processes and, in tests, in process:
// where they write, and how they end with an exit code.
/** Where a CLI writes its lines: the process's stdout and stderr, or a test's buffers. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

export const processIo: CliIo = { out: (line) => console.log(line), err: (line) => console.error(line) };

/** Ends a CLI with an exit code (usage errors, an invalid stack file); runCli turns it into the code. */
export class CliExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

export type CliMain = (argv: string[], io: CliIo) => Promise<number>;

/**
 * Runs a CLI's main: its exit code, or `failCode` (verify and check: 2; lab: 1) with "NAME:
 * message" on stderr when it throws. The entry points pass process.argv and exit with the code;
 * tests run the same main in process.
 */
export async function runCli(name: string, main: CliMain, argv: string[], io: CliIo = processIo, failCode = 2): Promise<number> {
  try {
    return await main(argv, io);
  } catch (e) {
    if (e instanceof CliExit) return e.code;
    io.err(`${name}: ${(e as Error).message}`);
    return failCode;
  }
}
