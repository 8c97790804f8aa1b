// What the CLIs (npm run verify, check, validate, lab) share to run as processes and, in tests,
// in process: where they write, and how they end with an exit code.
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

/** A usage error: `message` (parseArgs' own for an unknown option or a missing value), then the usage line; exits `code` (verify, check: 2; lab: 1). */
export function usageExit(io: CliIo, usage: string, message?: string, code = 2): never {
  if (message) io.err(message);
  io.err(`usage: ${usage}`);
  throw new CliExit(code);
}

export type CliMain = (argv: string[], io: CliIo) => Promise<number>;

/** The exit code of an internal error (a bug) in verify, check and validate: never one of their answers (0, 1, 2). */
export const INTERNAL_ERROR = 3;

/**
 * An error no CLI throws on purpose: JavaScript's own (TypeError ...) or the system's (EMFILE,
 * ENOMEM ...). Those the CLIs throw name a host or a file and are their failure code.
 */
export function isInternal(e: unknown): boolean {
  return !(e instanceof Error) || e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError || e instanceof SyntaxError || typeof (e as NodeJS.ErrnoException).code === "string";
}

/**
 * Runs a CLI's main: its exit code, or `failCode` (verify, check and validate: 2; lab: 1) with
 * "NAME: message" on stderr when it throws; an internal error (isInternal) exits
 * `internalCode` (verify, check, validate: 3) saying it is a bug. The entry points pass
 * process.argv and exit with the code (exitWith); tests run the same main in process.
 */
export async function runCli(name: string, main: CliMain, argv: string[], io: CliIo = processIo, failCode = 2, internalCode = failCode === 2 ? INTERNAL_ERROR : failCode): Promise<number> {
  try {
    return await main(argv, io);
  } catch (e) {
    if (e instanceof CliExit) return e.code;
    if (isInternal(e)) {
      io.err(`${name}: internal error (a bug in mptcp-pulumi, please report it): ${(e as Error)?.stack ?? String(e)}`);
      return internalCode;
    }
    io.err(`${name}: ${(e as Error).message}`);
    return failCode;
  }
}

/**
 * An entry point: runs the main as runCli does and exits with its code; an error thrown outside
 * the main's promise (an event handler's) exits INTERNAL_ERROR too, never 1 (which means drift
 * to check and a mismatch to verify).
 */
export function exitWith(name: string, main: CliMain): void {
  const crash = (e: unknown) => {
    processIo.err(`${name}: internal error (a bug in mptcp-pulumi, please report it): ${(e as Error)?.stack ?? String(e)}`);
    process.exit(INTERNAL_ERROR);
  };
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);
  // exit once stdout and stderr have taken every line (a pipe may still hold some)
  const exit = (code: number) => process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
  runCli(name, main, process.argv.slice(2), processIo).then(exit, crash);
}
