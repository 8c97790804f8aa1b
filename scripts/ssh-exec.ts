// The contract every SSH exec wrapper here keeps: npm run verify's and check's sessions
// (scripts/verify/ssh.ts) and the tests' stand-in for the command provider (test/harness/ssh.ts).
// A command's exit status is the one the host sent; a command whose status never came (the
// connection or channel closed first, or the command was killed by a signal) exits 255 with
// stderr saying so, as OpenSSH's ssh client exits and as the provider fails (x/crypto's
// ExitMissingError), never -1.

/** What a command run over SSH gave: its exit status and what it printed. */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The exit status of a command whose own never came: OpenSSH's ssh exits 255 then. */
export const EXIT_STATUS_MISSING = 255;

/** x/crypto ssh/session.go ExitMissingError: the channel closed before the command's exit status (or an exit signal). */
export const EXIT_MISSING = "wait: remote command exited without exit status or exit signal";

/** What stderr opens with for a command killed by `signal` (ssh2's name, SIGTERM): no exit status came. */
export function killedBy(signal: string): string {
  return `remote command killed by signal ${signal}: no exit status`;
}

/**
 * A channel's end as ssh2 reports it ("close" with the exit status, or null and the signal, or
 * nothing): the exit status, or EXIT_STATUS_MISSING with why (EXIT_MISSING, or killedBy).
 */
export function exitOf(code: number | null | undefined, signal?: string | null): { code: number; missing?: string } {
  if (typeof code === "number") return { code };
  return { code: EXIT_STATUS_MISSING, missing: signal ? killedBy(signal) : EXIT_MISSING };
}
