// One SSH connection per host for the read-only tools (npm run verify, npm run check): many
// commands over it (ssh2), instead of a connection per command. Host keys are checked against
// the stack config exactly as the command provider does: `ssh.hostKey` must match, unless the
// config says insecureIgnoreHostKey.
import { readFileSync } from "node:fs";
import { Client, ClientChannel } from "ssh2";
import { HostModel } from "../../components/model";
import { shq, wrapScript } from "../../components/shell";
import { ExecResult, exitOf } from "../ssh-exec";

export type { ExecResult };

/** Options of one command: how long it may stay silent. */
export interface ExecOptions {
  /** Seconds without output (or exit) after which the host counts as stalled; default: the session's deadlines.silence. */
  silence?: number;
}

export interface Session {
  host: HostModel;
  /** Runs a command (as root: through `sudo -n` for another login user) and collects its output. */
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Starts a command and hands over its channel (stdout, stderr, close); the channel is watched for silence as exec's is. */
  start(command: string, opts?: ExecOptions): Promise<ClientChannel>;
  /** Runs a rendered host script delivered as `pulumi up` delivers it (wrapScript: sh -s, sudo -n for another user). */
  script(text: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Ends the connection: resolves when its socket is closed. */
  close(): Promise<void>;
  /** Why the session was given up (a deadline passed, the connection dropped): then every command fails with UnreachableError. */
  readonly lost?: string;
}

/**
 * Seconds each SSH step may take before the host counts as unreachable: the connection (TCP,
 * the server's banner, key exchange and authentication), the reply to each command (channel
 * open and exec request), and a command's silence (no output and no exit).
 */
export interface Deadlines {
  connect: number;
  reply: number;
  silence: number;
}

export const DEFAULT_DEADLINES: Deadlines = { connect: 15, reply: 15, silence: 60 };

export interface Credentials {
  /** A private key (PEM/OpenSSH text); else the agent at SSH_AUTH_SOCK. */
  privateKey?: string;
  /** Seconds to wait for the connection (deadlines.connect). */
  timeout?: number;
  deadlines?: Partial<Deadlines>;
}

/** Credentials from `--identity FILE`, else the SSH agent. */
export function credentialsFrom(identity: string | undefined): Credentials {
  if (identity !== undefined) return { privateKey: readFileSync(identity, "utf8") };
  if (!process.env.SSH_AUTH_SOCK) throw new Error("no --identity KEY given and no SSH agent (SSH_AUTH_SOCK is unset)");
  return {};
}

/** A host that cannot be reached, or stopped answering: the CLIs report it (exit 2). */
export class UnreachableError extends Error {}

/** Errors of this machine, not of the host: a login failing with one is not the host's unreachability. */
const LOCAL_ERRORS = new Set(["EMFILE", "ENFILE", "ENOMEM", "ENOBUFS"]);

/** Whether a host key the server presents (its wire blob) is the one the config pins. */
export function hostKeyMatches(host: HostModel, blob: Buffer): boolean {
  if (!host.ssh.hostKey) return host.ssh.insecureIgnoreHostKey;
  return Buffer.from(host.ssh.hostKey.split(" ")[1], "base64").equals(blob);
}

export function connect(host: HostModel, creds: Credentials): Promise<Session> {
  const at = `${host.name} (${host.ssh.user}@${host.ssh.host}:${host.ssh.port}, mptcp:hosts[${host.index}].ssh)`;
  const deadlines: Deadlines = { ...DEFAULT_DEADLINES, ...(creds.timeout !== undefined ? { connect: creds.timeout } : {}), ...creds.deadlines };
  const client = new Client();
  const wrap = (command: string) => (host.ssh.user === "root" ? command : `sudo -n sh -c ${shq(command)}`);
  /** What waits on the connection: each fails when the session is lost. */
  const waiting = new Set<(e: Error) => void>();
  let lost: string | undefined;
  let ready = false;
  const lose = (why: string) => {
    if (lost) return;
    lost = `${at}: unreachable: ${why}`;
    client.destroy();
    for (const fail of [...waiting]) fail(new UnreachableError(lost));
    waiting.clear();
  };
  // a dropped connection fails what waits on it (ssh2 leaves an unanswered exec's callback uncalled)
  let closed = false;
  client.on("close", () => {
    closed = true;
    lose(ready ? "the connection closed" : "the connection closed before login");
  });
  /** A promise that fails with the session (lost), or loses the session when `seconds` pass without a poke: the host stalls. */
  const guarded = <T>(seconds: number, stalled: string, body: (resolve: (v: T) => void, reject: (e: Error) => void, poke: () => void) => void) =>
    new Promise<T>((resolve, reject) => {
      if (lost) return reject(new UnreachableError(lost));
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        waiting.delete(fail);
      };
      const fail = (e: Error) => {
        done();
        reject(e);
      };
      const poke = () => {
        clearTimeout(timer);
        timer = setTimeout(() => lose(`stalled: ${stalled} in ${seconds} s`), seconds * 1000);
      };
      waiting.add(fail);
      poke();
      body(
        (v) => {
          done();
          resolve(v);
        },
        fail,
        poke,
      );
    });
  const open = (text: string) =>
    guarded<ClientChannel>(deadlines.reply, "no reply to a command (channel open, exec request)", (resolve, reject) => {
      try {
        client.exec(text, (err, ch) => (err ? reject(new UnreachableError(`${at}: unreachable: the command was refused: ${err.message}`)) : resolve(ch)));
      } catch (e) {
        reject(new UnreachableError(`${at}: unreachable: ${(e as Error).message}`));
      }
    });
  /** Watches a channel: silent for `seconds` (no output, no exit), the session is lost; resolves with the exit status (exitOf: 255 and why when none came). */
  const watch = (ch: ClientChannel, seconds: number, onData?: (out: Buffer, err: boolean) => void) =>
    guarded<ReturnType<typeof exitOf>>(seconds, "no output and no exit from a command", (resolve, _reject, poke) => {
      ch.on("data", (d: Buffer) => {
        poke();
        onData?.(d, false);
      });
      ch.stderr.on("data", (d: Buffer) => {
        poke();
        onData?.(d, true);
      });
      ch.on("close", (code?: number | null, signal?: string) => resolve(exitOf(code, signal)));
    });
  const collect = async (text: string, opts: ExecOptions = {}): Promise<ExecResult> => {
    const ch = await open(text);
    let stdout = "";
    let stderr = "";
    const { code, missing } = await watch(ch, opts.silence ?? deadlines.silence, (d, err) => {
      if (err) stderr += d;
      else stdout += d;
    });
    return { code, stdout, stderr: missing ? `${missing}\n${stderr}` : stderr };
  };
  const session: Session = {
    host,
    start: async (command, opts = {}) => {
      const ch = await open(wrap(command));
      // the caller reads the channel; a silent one still loses the session (and fails every command waiting on it)
      watch(ch, opts.silence ?? deadlines.silence).catch(() => undefined);
      return ch;
    },
    exec: (command, opts) => collect(wrap(command), opts),
    script: (text, opts) => collect(wrapScript(text, { user: host.ssh.user, host: host.name }), opts),
    close: () =>
      new Promise<void>((resolve) => {
        lost ??= `${at}: the session was closed`;
        if (closed) return resolve();
        client.once("close", () => resolve());
        client.end();
        // a peer that never closes its side is cut after a second
        setTimeout(() => client.destroy(), 1000).unref();
      }),
    get lost() {
      return lost;
    },
  };
  return new Promise((resolve, reject) => {
    let keyMismatch = false;
    // the whole login (TCP, banner, key exchange, authentication) within deadlines.connect, by a
    // timer of our own as well as ssh2's readyTimeout
    const timer = setTimeout(() => lose(`stalled: no login within ${deadlines.connect} s (TCP connection, the server's banner, key exchange or authentication)`), deadlines.connect * 1000);
    // the connection closed or given up before login fails the login
    const failLogin = (e: Error) => {
      clearTimeout(timer);
      reject(e);
    };
    waiting.add(failLogin);
    client
      // TCP_NODELAY, as OpenSSH and Go's net package set it: each exec's small requests and
      // replies are not held back waiting for the previous one's ACK (delayed ACK: 40 ms each)
      .on("connect", () => client.setNoDelay(true))
      .on("ready", () => {
        clearTimeout(timer);
        waiting.delete(failLogin);
        ready = true;
        resolve(session);
      })
      .on("error", (e: NodeJS.ErrnoException) => {
        // out of file descriptors or memory here is no fault of the host's: an internal error, not unreachable
        if (LOCAL_ERRORS.has(e.code ?? "")) failLogin(e);
        else failLogin(new UnreachableError(keyMismatch ? `${at}: the host key does not match ssh.hostKey: check it with ssh-keyscan, or someone is in the middle` : `${at}: ${e.message}`));
        lose(e.message);
      });
    try {
      client.connect({
        host: host.ssh.host,
        port: host.ssh.port,
        username: host.ssh.user,
        // ours fires first, naming the step
        readyTimeout: deadlines.connect * 1000 + 1000,
        ...(creds.privateKey ? { privateKey: creds.privateKey } : { agent: process.env.SSH_AUTH_SOCK }),
        hostVerifier: (blob: Buffer) => {
          keyMismatch = !hostKeyMatches(host, blob);
          return !keyMismatch;
        },
      });
    } catch (e) {
      // ssh2 throws at once on some input (a private key it cannot parse)
      failLogin(new UnreachableError(`${at}: ${(e as Error).message}`));
      lose((e as Error).message);
    }
  });
}

/** Runs `fn` over `items`, at most `limit` at a time (0: all at once); the results in order. */
export async function pooled<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: limit > 0 ? Math.min(limit, items.length) : items.length }, worker));
  return out;
}

/** How many SSH connections the CLIs open at once unless told (--connections). */
export const DEFAULT_CONNECTIONS = 32;

/** Sessions to every named host, `connections` logins at a time (0: all at once); those unreachable are reported, not thrown (an error of this machine's, such as EMFILE, is). */
export async function connectAll(hosts: HostModel[], creds: Credentials, connections = DEFAULT_CONNECTIONS): Promise<{ sessions: Map<string, Session>; unreachable: Map<string, string> }> {
  const sessions = new Map<string, Session>();
  const unreachable = new Map<string, string>();
  await pooled(hosts, connections, (h) =>
    connect(h, creds).then(
      (s) => void sessions.set(h.name, s),
      (e: Error) => {
        if (!(e instanceof UnreachableError)) throw e;
        unreachable.set(h.name, e.message);
      },
    ),
  );
  return { sessions, unreachable };
}
