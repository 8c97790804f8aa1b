// TEST CODE. A Runner that executes a command text the way the command provider does: one new
// SSH connection per command, the text as the exec request, the private key from the
// connection, and the host key checked only when `hostKey` is set (ssh2, in process). sshArgs:
// the same connection for the OpenSSH client, for a test that kills the client mid-command.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { connect, Socket } from "node:net";
import { basename, join, posix } from "node:path";
import { Client, SFTPWrapper } from "ssh2";
import { RecordedCommand, RecordedCopy } from "./program";
import { Runner, RunResult } from "./provider";
import { sleep } from "../../scripts/lab/wait";
import { EXIT_MISSING, EXIT_STATUS_MISSING, exitOf } from "../../scripts/ssh-exec";

export interface SshRunner {
  run: Runner;
  /** Ends the runner (nothing is left open between commands). */
  close(): void;
  /** How many SSH connections were asked for (one per command, or per kept connection). */
  connections: number;
  /** How many dials (TCP connects) were made, retries included. */
  dials: number;
}

/**
 * Writes `text` to a file in `dir` named by its hash, once: commands run side by side share the
 * file, and none ever reads one another is still writing (a rewrite in place did that: "Load key
 * ...: error in libcrypto" under load). Written to a temporary name, then renamed.
 */
function fileOf(dir: string, kind: string, text: string): string {
  const file = join(dir, `${kind}-${createHash("sha256").update(text).digest("hex").slice(0, 16)}`);
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.${Math.random().toString(16).slice(2)}`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, file);
  }
  return file;
}

/**
 * The key exchange: the one the provider's Go SSH client settles on with these sshds (OpenSSH 9.2
 * lacks its ML-KEM hybrid). OpenSSH's own default, sntrup761x25519, costs several times the CPU per
 * connection (docs/performance.md, "Tools and the harness"), and the suite opens hundreds.
 */
export const KEX = "curve25519-sha256";

export function sshArgs(connection: Record<string, any>, dir: string): string[] {
  const port = connection.port ?? 22;
  const args = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "-o", "GlobalKnownHostsFile=/dev/null", "-o", `KexAlgorithms=${KEX}`, "-p", String(port)];
  if (connection.hostKey) {
    const known = fileOf(dir, "known_hosts", `${port === 22 ? connection.host : `[${connection.host}]:${port}`} ${connection.hostKey}\n`);
    args.push("-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${known}`);
  } else {
    args.push("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null");
  }
  if (connection.privateKey) {
    const key = fileOf(dir, "key", connection.privateKey.endsWith("\n") ? connection.privateKey : connection.privateKey + "\n");
    args.push("-o", "IdentitiesOnly=yes", "-i", key);
  }
  args.push(`${connection.user ?? "root"}@${connection.host}`);
  return args;
}

/** The connection of a command: where, as whom, with which key, and which host key to accept. */
const connectionKey = (c: Record<string, any>) => JSON.stringify([c.host, c.port ?? 22, c.user ?? "root", c.privateKey ?? "", c.hostKey ?? ""]);

/**
 * The provider's connection timings, as read from the sources (fetched, read 2026-12):
 * - pulumi-command v1.2.1, provider/pkg/provider/remote/connection.go: `dialErrorDefault = 10`;
 *   `perDialTimeout` default 15 (seconds), the `ssh.ClientConfig.Timeout`; `Dial` runs
 *   `dialWithRetry` (every failure of `ssh.Dial` is retried: TCP, handshake, host key, auth), which
 *   gives up when `reachedDialingErrorLimit(try+1, 10)`, i.e. on the 11th failed dial, with
 *   `after %d failed attempts: %w` and `try` = 10.
 * - pulumi sdk v3.224.0 (the provider's go.mod), sdk/go/common/util/retry/until.go, `Until`: waits
 *   DefaultDelay 100 ms before the 2nd try, times DefaultBackoff 1.5 each time, at most
 *   DefaultMaxDelay 5 s: 10 waits, 11.33 s in all.
 * - golang.org/x/crypto v0.48.0, ssh/client.go `Dial`: `net.DialTimeout(network, addr,
 *   config.Timeout)` (the timeout covers the TCP connect only), then `NewClientConn` (no timeout).
 * - Go's net package (go1.25, the provider's go.mod `go` line), src/net/dial.go (`Dialer.KeepAlive`
 *   zero: keepalive on) and src/net/tcpsock.go / tcpsockopt_unix.go: `defaultTCPKeepAliveIdle` 15 s,
 *   `defaultTCPKeepAliveInterval` 15 s, `defaultTCPKeepAliveCount` 9. x/crypto sends no SSH-level
 *   keepalive. Linux aborts the connection when the 10th keepalive timer finds 9 probes unanswered:
 *   15 + 9 x 15 = 150 s after the last segment from the server. x/crypto ssh/session.go then fails
 *   `Wait` with "wait: remote command exited without exit status or exit signal".
 */
export interface ProviderTimings {
  /** Failed dials before the command fails: dialErrorLimit + 1 dials (the connection's `dialErrorLimit`, which the SDK fills in with 10, wins unless a test shortens it). */
  dialErrorLimit: number;
  /** TCP connect timeout of one dial, ms (the connection's `perDialTimeout`, seconds, which the SDK fills in with 15, wins unless a test shortens it; 0: none). */
  perDialTimeoutMs: number;
  retryDelayMs: number;
  retryBackoff: number;
  retryMaxDelayMs: number;
  keepIdleMs: number;
  keepIntervalMs: number;
  keepCount: number;
}

/** What the provider really does (see ProviderTimings). The default of every runner. */
export const PROVIDER_TIMINGS: Readonly<ProviderTimings> = {
  dialErrorLimit: 10,
  perDialTimeoutMs: 15_000,
  retryDelayMs: 100,
  retryBackoff: 1.5,
  retryMaxDelayMs: 5_000,
  keepIdleMs: 15_000,
  keepIntervalMs: 15_000,
  keepCount: 9,
};

/** The waits between dials (retry.Until): before dial 2, 3, ... */
export function retryDelays(t: Pick<ProviderTimings, "retryDelayMs" | "retryBackoff" | "retryMaxDelayMs">, dials: number): number[] {
  const out: number[] = [];
  let delay = t.retryDelayMs;
  for (let i = 1; i < dials; i++) {
    out.push(Math.min(delay, t.retryMaxDelayMs));
    delay = Math.min(delay, t.retryMaxDelayMs) * t.retryBackoff;
  }
  return out;
}

/** How long after the last segment from the server a silent connection is aborted (TCP keepalive). */
export const deadSessionMs = (t: Pick<ProviderTimings, "keepIdleMs" | "keepIntervalMs" | "keepCount">) => t.keepIdleMs + t.keepCount * t.keepIntervalMs;

/** Go's text for a failed connect (syscall.Errno strings). */
function connectError(e: NodeJS.ErrnoException): string {
  const errno: Record<string, string> = {
    ECONNREFUSED: "connection refused",
    EHOSTUNREACH: "no route to host",
    ENETUNREACH: "network is unreachable",
    ETIMEDOUT: "connection timed out",
    ENOENT: "no such file or directory",
    EACCES: "permission denied",
    ECONNRESET: "connection reset by peer",
  };
  return e.code && errno[e.code] ? `connect: ${errno[e.code]}` : e.message;
}

/** net.JoinHostPort. */
const joinHostPort = (host: string, port: number) => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`);

/**
 * Go's TCP keepalive on one connection, in user space (Node cannot set TCP_KEEPINTVL/TCP_KEEPCNT,
 * and the machine's own keepalive sysctls are not ours to change): `keepIdleMs` after the last
 * bytes from the server a probe, then one every `keepIntervalMs`; bytes from the server reset it;
 * `keepCount` probes unanswered and the socket is destroyed, as the kernel aborts it. The probe is
 * an SSH keepalive request (OpenSSH's sshd answers it), sent only once the connection is ready;
 * before that an unanswered probe is counted without one being sent. The difference from TCP: a
 * TCP probe is answered by the server's kernel even when sshd is stuck.
 */
function keepalive(sock: Socket, client: Client, t: ProviderTimings, onAbort: () => void): { ready(): void; stop(): void } {
  let heard = performance.now();
  let probes = 0;
  let ready = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number) => {
    clearTimeout(timer);
    timer = setTimeout(tick, Math.max(1, ms));
    timer.unref();
  };
  const tick = () => {
    const idle = performance.now() - heard;
    if (probes === 0 && idle < t.keepIdleMs) return arm(t.keepIdleMs - idle);
    if (probes >= t.keepCount) {
      onAbort();
      sock.destroy();
      return;
    }
    probes++;
    if (ready) (client as any)._protocol?.ping();
    arm(t.keepIntervalMs);
  };
  // after ssh2 attached its own listener and paused the socket: this one does not make it flow
  sock.on("data", () => {
    heard = performance.now();
    if (probes > 0) {
      probes = 0;
      arm(t.keepIdleMs);
    }
  });
  sock.once("close", () => clearTimeout(timer));
  arm(t.keepIdleMs);
  return { ready: () => (ready = true), stop: () => clearTimeout(timer) };
}

/** A connection that failed: the error text the provider reports, and whether to dial again (the agent's failure is not retried). */
interface DialFailure {
  error: string;
  retry: boolean;
}

/** The agent the provider uses: connection.agentSocketPath, else SSH_AUTH_SOCK when set and not empty (connection_unix.go, tryGetDefaultAgentSocket). */
export const agentSocketOf = (c: Record<string, any>, env: NodeJS.ProcessEnv): string | undefined => c.agentSocketPath ?? (env.SSH_AUTH_SOCK || undefined);

/** SSHConfig's `dialAgent(path)` (net.Dial("unix", path)): a failure fails the command before any dial. */
function dialAgent(path: string): Promise<DialFailure | undefined> {
  return new Promise((resolve) => {
    const s = connect({ path });
    s.once("connect", () => {
      s.destroy();
      resolve(undefined);
    });
    s.once("error", (e: NodeJS.ErrnoException) => resolve({ error: `dial unix ${path}: ${connectError(e)}`, retry: false }));
  });
}

/** The key type of an authorized_keys line: what the provider offers as its only host key algorithm (`publicKey.Type()`). */
export const hostKeyType = (hostKey: string) => hostKey.split(" ")[0];

/** One dial as x/crypto's ssh.Dial with the provider's ClientConfig: resolves with the ready client or the error Go would give. */
function dialOnce(c: Record<string, any>, t: ProviderTimings, shortened: Partial<ProviderTimings>, agent: string | undefined, killed: WeakSet<Client>): Promise<Client | DialFailure> {
  const host = String(c.host);
  const port = Number(c.port ?? 22);
  const endpoint = joinHostPort(host, port);
  const perDial = shortened.perDialTimeoutMs ?? (c.perDialTimeout !== undefined ? Number(c.perDialTimeout) * 1000 : t.perDialTimeoutMs);
  return new Promise((resolve) => {
    const client = new Client();
    // TCP_NODELAY, as Go's net package sets on every TCP connection: without it each small
    // handshake message waits for the previous one's delayed ACK (docs/performance.md, "Tools and the harness")
    const sock = connect({ host, port, noDelay: true });
    let settled = false;
    let remoteHostKeyAlgos = "";
    const settle = (r: Client | DialFailure) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!(r instanceof Client)) {
        client.end();
        sock.destroy();
      }
      resolve(r);
    };
    const failed = (error: string) => settle({ error, retry: true });
    const timer = perDial > 0 ? setTimeout(() => failed(`dial tcp ${endpoint}: i/o timeout`), perDial) : undefined;
    sock.once("error", (e) => failed(`dial tcp ${endpoint}: ${connectError(e)}`));
    sock.once("connect", () => {
      clearTimeout(timer);
      const offered = c.hostKey ? [hostKeyType(String(c.hostKey))] : undefined;
      client
        .on("ready", () => {
          ka.ready();
          settle(client);
        })
        .on("error", (e: Error & { level?: string }) => {
          // x/crypto's texts for what ssh2 reports (common.go AlgorithmNegotiationError, client.go fixedHostKey, client_auth.go)
          let why = e.message;
          if (/no matching host key format/.test(why)) why = `no common algorithm for host key; we offered: [${offered?.join(" ")}], peer offered: [${remoteHostKeyAlgos.split(",").join(" ")}]`;
          else if (/Host denied/.test(why)) why = "host key mismatch";
          else if (/authentication methods failed/.test(why)) why = `unable to authenticate, attempted methods [none${c.privateKey || agent ? " publickey" : ""}], no supported methods remain`;
          failed(`ssh: handshake failed: ssh: ${why}`);
        })
        .connect({
          sock,
          username: c.user ?? "root",
          privateKey: c.privateKey,
          agent,
          // x/crypto puts no deadline on the handshake; the keepalive below ends a dead one
          readyTimeout: 0,
          algorithms: { kex: [KEX], ...(offered ? { serverHostKey: offered as any } : {}) },
          hostVerifier: (key: Buffer) => !c.hostKey || Buffer.from(String(c.hostKey).split(" ")[1], "base64").equals(key),
          debug: (line: string) => {
            const m = /\(remote\) Host key format: (.*)$/.exec(line);
            if (m) remoteHostKeyAlgos = m[1];
          },
        });
      const ka = keepalive(sock, client, t, () => killed.add(client));
    });
  });
}

/**
 * connection.go `Dial` with `dialWithRetry`: dials until one succeeds or dialErrorLimit + 1 have
 * failed (-1: no limit), waiting retry.Until's delays between them; the last failure's text
 * behind `after N failed attempts: `. An agent that cannot be dialled fails at once (SSHConfig).
 */
async function dial(
  c: Record<string, any>,
  t: ProviderTimings,
  shortened: Partial<ProviderTimings>,
  env: NodeJS.ProcessEnv,
  killed: WeakSet<Client>,
  counted: () => void,
): Promise<Client | RunResult> {
  const agent = agentSocketOf(c, env);
  if (agent !== undefined) {
    const bad = await dialAgent(agent);
    if (bad) return { stdout: "", stderr: bad.error, code: EXIT_STATUS_MISSING };
  }
  const limit = shortened.dialErrorLimit ?? (c.dialErrorLimit !== undefined ? Number(c.dialErrorLimit) : t.dialErrorLimit);
  let delay = t.retryDelayMs;
  for (let attempt = 0; ; attempt++) {
    counted();
    const r = await dialOnce(c, t, shortened, agent, killed);
    if (r instanceof Client) return r;
    if (limit > -1 && attempt + 1 > limit) return { stdout: "", stderr: `after ${attempt} failed attempts: ${r.error}`, code: EXIT_STATUS_MISSING };
    delay = Math.min(delay, t.retryMaxDelayMs);
    await sleep(delay);
    delay *= t.retryBackoff;
  }
}

export { EXIT_MISSING };

/**
 * Runs `text` as an exec request on a ready connection; `opened` false when no channel could be
 * opened (the command did not start). A connection that closes before the answer counts as
 * opened: the command may have started, so it is reported failed, never run again.
 */
function execOn(client: Client, text: string, killed: WeakSet<Client>): Promise<RunResult & { opened: boolean }> {
  return new Promise((resolve) => {
    let finished = false;
    const done = (r: RunResult, opened = true) => {
      if (finished) return;
      finished = true;
      client.removeListener("close", lost);
      resolve({ stdout: r.stdout.replace(/\n$/, ""), stderr: r.stderr.replace(/\n$/, ""), code: r.code, opened });
    };
    // the connection ended (the keepalive gave up, or the server went away) before an exit status:
    // Wait's ExitMissingError, with what the command printed (commandOutputs.go: "%w: running %q:\n%s")
    let stdout = "";
    let stderr = "";
    const missing = (why: string) => done({ stdout, stderr: `${why}\n${stdout}${stderr}`, code: EXIT_STATUS_MISSING });
    const lost = () => missing(`${EXIT_MISSING}${killed.has(client) ? " (TCP keepalive: no answer from the server)" : ""}`);
    client.once("close", lost);
    client.exec(text, (err, ch) => {
      if (err) return done({ stdout: "", stderr: `ssh: ${err.message}`, code: EXIT_STATUS_MISSING }, false);
      ch.on("data", (d: Buffer) => (stdout += d));
      ch.stderr.on("data", (d: Buffer) => (stderr += d));
      ch.on("close", (code?: number | null, signal?: string) => {
        const exit = exitOf(code, signal);
        if (exit.missing === EXIT_MISSING) lost();
        else if (exit.missing) missing(exit.missing);
        else done({ stdout, stderr, code: exit.code });
      });
    });
  });
}

/** An SFTP request as a promise; a missing path (SFTP status 2) gives undefined. */
function sftpCall<T>(fn: (cb: (err: Error | null | undefined, v?: T) => void) => void, missingOk = false): Promise<T | undefined> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? (missingOk && (err as { code?: number }).code === 2 ? resolve(undefined) : reject(err)) : resolve(v))));
}

/**
 * remote.CopyToRemote of a local directory, as copyToRemote and sftpCopy do (copy.go at v1.2.1):
 * an SFTP session on the connection; remotePath made (MkdirAll) when missing; the directory,
 * given without a trailing slash, copied into remotePath/<its name> (made when missing), each
 * file created or truncated and written whole (sftp.Create, ReadFrom), one after another; nothing
 * on the host removed. Paths relative to the SSH user's login directory, as the SFTP server takes them.
 */
async function copyOn(client: Client, copy: RecordedCopy): Promise<RunResult> {
  let sftp: SFTPWrapper | undefined;
  try {
    sftp = (await sftpCall<SFTPWrapper>((cb) => client.sftp(cb)))!;
    const s = sftp;
    const isDir = async (p: string) => (await sftpCall<{ isDirectory(): boolean }>((cb) => s.stat(p, cb), true))?.isDirectory();
    const mkdirAll = async (p: string) => {
      const parts = p.split("/").filter((x) => x);
      for (let i = 1; i <= parts.length; i++) {
        const at = (p.startsWith("/") ? "/" : "") + parts.slice(0, i).join("/");
        const d = await isDir(at);
        if (d === false) throw new Error(`remote path ${at} exists but is not a directory`);
        if (d === undefined) await sftpCall((cb) => s.mkdir(at, cb));
      }
    };
    await mkdirAll(copy.remotePath);
    const dest = posix.join(copy.remotePath, basename(copy.dir));
    await mkdirAll(dest);
    for (const f of readdirSync(copy.dir).sort()) {
      if (!statSync(join(copy.dir, f)).isFile()) throw new Error(`${copy.dir}/${f}: the copied directory holds files only`);
      const data = readFileSync(join(copy.dir, f));
      await sftpCall((cb) => s.writeFile(posix.join(dest, f), data, cb));
    }
    return { stdout: "", stderr: "", code: 0 };
  } catch (e) {
    return { stdout: "", stderr: `sftp: ${(e as Error).message}`, code: 1 };
  } finally {
    sftp?.end();
  }
}

export interface SshRunnerOptions {
  /**
   * One connection per host (and user, key and host key), each command an exec channel on it,
   * instead of a new connection per command as the provider makes. For tests whose subject is
   * not the connection: a command still runs as the provider runs it (an exec request, a fresh
   * session), without sshd's per-connection work (key exchange, authentication, its re-exec):
   * docs/performance.md, "Tools and the harness". A connection found closed is opened again, but one whose
   * path dies silently (an address removed, forwarding off) hangs its next command, where the
   * provider's new connection would fail to connect: the benchmark and the tests that cut or move
   * a host's SSH path keep one connection per command.
   */
  reuse?: boolean;
  /**
   * Shorter provider timings (dial retries, per-dial timeout, TCP keepalive) for a test that
   * needs them; by default the provider's own (PROVIDER_TIMINGS). A test that shortens them says so.
   * A shortened dialErrorLimit or perDialTimeoutMs wins over the connection's own (the SDK fills
   * in 10 and 15 s on every connection).
   */
  timings?: Partial<ProviderTimings>;
  /** The environment of the process running the provider (SSH_AUTH_SOCK). Default: this process's. */
  env?: NodeJS.ProcessEnv;
}

/** Channels one connection carries at once (sshd's MaxSessions is 10); past it, another connection. */
const CHANNELS_PER_CONNECTION = 8;

/**
 * Runs each command in process, as the provider's Go SSH client does: a new ssh2 connection per
 * command (exec request, the connection's private key, the host key checked only when `hostKey`
 * is set), no OpenSSH client started per command (its cost: docs/performance.md, "Tools and the harness"). The connection is made as the provider makes it (ProviderTimings, real by default): up to
 * dialErrorLimit + 1 dials with retry.Until's backoff, each TCP connect within perDialTimeout and
 * the handshake without a deadline; the agent at SSH_AUTH_SOCK (or agentSocketPath) dialled first,
 * even with a private key; a pinned host key offered as its own type only; Go's TCP keepalive on
 * every connection. Failures exit 255 with the provider's error text. With `reuse`, see
 * SshRunnerOptions.
 */
export function sshRunner(opts: SshRunnerOptions = {}): SshRunner {
  type Kept = { client: Client; active: number };
  const pool = new Map<string, Kept[]>();
  const drop = (key: string, conn: Kept) =>
    pool.set(
      key,
      (pool.get(key) ?? []).filter((x) => x !== conn),
    );
  const timings: ProviderTimings = { ...PROVIDER_TIMINGS, ...opts.timings };
  const killed = new WeakSet<Client>();
  const open = async (c: Record<string, any>): Promise<Client | RunResult> => {
    self.connections++;
    return dial(c, timings, opts.timings ?? {}, opts.env ?? process.env, killed, () => self.dials++);
  };
  const self: SshRunner = {
    connections: 0,
    dials: 0,
    close: () => {
      for (const conns of pool.values()) for (const x of conns) x.client.end();
      pool.clear();
    },
    run: async (command: RecordedCommand, text: string): Promise<RunResult> => {
      const c = command.connection;
      if (command.copy) {
        // the provider dials a connection of its own for a copy (copyToRemote: Connection.Dial)
        const client = await open(c);
        if (!(client instanceof Client)) return client;
        const r = await copyOn(client, command.copy);
        client.end();
        return r;
      }
      if (!opts.reuse) {
        const client = await open(c);
        if (!(client instanceof Client)) return client;
        const r = await execOn(client, text, killed);
        client.end();
        return { stdout: r.stdout, stderr: r.stderr, code: r.code };
      }
      const key = connectionKey(c);
      for (;;) {
        const conns = pool.get(key) ?? [];
        let conn = conns.find((x) => x.active < CHANNELS_PER_CONNECTION);
        const fresh = !conn;
        if (!conn) {
          const client = await open(c);
          if (!(client instanceof Client)) return client;
          const entry: Kept = { client, active: 0 };
          conn = entry;
          client.once("close", () => drop(key, entry));
          pool.set(key, [...(pool.get(key) ?? []), conn]);
        }
        conn.active++;
        const r = await execOn(conn.client, text, killed).finally(() => conn.active--);
        // a kept connection that can no longer open a channel (closed or cut meanwhile): drop it, dial again
        if (!r.opened && !fresh) {
          drop(key, conn);
          conn.client.end();
          continue;
        }
        return { stdout: r.stdout, stderr: r.stderr, code: r.code };
      }
    },
  };
  return self;
}
