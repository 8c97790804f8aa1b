// TEST CODE. A Runner that executes a command text the way the command provider does: one new
// SSH connection per command, the text as the exec request, the private key from the
// connection, and the host key checked only when `hostKey` is set (ssh2, in process). sshArgs:
// the same connection for the OpenSSH client, for a test that kills the client mid-command.
import { createHash } from "node:crypto";
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { Client } from "ssh2";
import { RecordedCommand } from "./program";
import { Runner, RunResult } from "./provider";

export interface SshRunner {
  run: Runner;
  /** Ends the runner (nothing is left open between commands). */
  close(): void;
  /** How many SSH connections were opened. */
  connections: number;
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
 * lacks its ML-KEM hybrid). OpenSSH's own default, sntrup761x25519, costs about 65 ms more CPU per
 * connection here (83 against 17 ms user time), and the suite opens hundreds.
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

/** Opens one SSH connection as the provider's client does; resolves with it ready, or with the failure a command would report. */
function dial(c: Record<string, any>): Promise<Client | RunResult> {
  const host = String(c.host);
  const port = Number(c.port ?? 22);
  return new Promise((resolve) => {
    const client = new Client();
    // TCP_NODELAY, as Go's net package sets on every TCP connection: without it each small
    // handshake message waits for the previous one's delayed ACK (155 ms per command here
    // against 105 ms, measured by hand)
    const sock = connect({ host, port, noDelay: true });
    let settled = false;
    const settle = (r: Client | RunResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!(r instanceof Client)) {
        client.end();
        sock.destroy();
      }
      resolve(r);
    };
    const failed = (message: string) => settle({ stdout: "", stderr: `ssh: connect to host ${host} port ${port}: ${message}`, code: 255 });
    const timer = setTimeout(() => failed("Connection timed out"), 5000);
    sock.once("error", (e) => failed(e.message));
    sock.once("connect", () => {
      clearTimeout(timer);
      client
        .on("ready", () => settle(client))
        .on("error", (e) => settle({ stdout: "", stderr: `ssh: ${host}: ${e.message}`, code: 255 }))
        .connect({
          sock,
          username: c.user ?? "root",
          privateKey: c.privateKey,
          readyTimeout: 120_000,
          algorithms: { kex: [KEX] },
          hostVerifier: (key: Buffer) => !c.hostKey || Buffer.from(String(c.hostKey).split(" ")[1], "base64").equals(key),
        });
    });
  });
}

/**
 * Runs `text` as an exec request on a ready connection; `opened` false when no channel could be
 * opened (the command did not start). A connection that closes before the answer counts as
 * opened: the command may have started, so it is reported failed, never run again.
 */
function execOn(client: Client, host: string, text: string): Promise<RunResult & { opened: boolean }> {
  return new Promise((resolve) => {
    let finished = false;
    const done = (r: RunResult, opened = true) => {
      if (finished) return;
      finished = true;
      client.removeListener("close", lost);
      resolve({ stdout: r.stdout.replace(/\n$/, ""), stderr: r.stderr.replace(/\n$/, ""), code: r.code, opened });
    };
    const lost = () => done({ stdout: "", stderr: `ssh: ${host}: connection closed`, code: 255 });
    client.once("close", lost);
    client.exec(text, (err, ch) => {
      if (err) return done({ stdout: "", stderr: `ssh: ${err.message}`, code: 255 }, false);
      let stdout = "";
      let stderr = "";
      ch.on("data", (d: Buffer) => (stdout += d));
      ch.stderr.on("data", (d: Buffer) => (stderr += d));
      ch.on("close", (code: number | null) => done({ stdout, stderr, code: code ?? 255 }));
    });
  });
}

export interface SshRunnerOptions {
  /**
   * One connection per host (and user, key and host key), each command an exec channel on it,
   * instead of a new connection per command as the provider makes. For tests whose subject is
   * not the connection: a command still runs as the provider runs it (an exec request, a fresh
   * session), without sshd's per-connection work (key exchange, authentication, its re-exec):
   * about 60 ms of CPU a command here. A connection found closed is opened again, but one whose
   * path dies silently (an address removed, forwarding off) hangs its next command, where the
   * provider's new connection would fail to connect: the benchmark and the tests that cut or move
   * a host's SSH path keep one connection per command.
   */
  reuse?: boolean;
}

/** Channels one connection carries at once (sshd's MaxSessions is 10); past it, another connection. */
const CHANNELS_PER_CONNECTION = 8;

/**
 * Runs each command in process, as the provider's Go SSH client does: a new ssh2 connection per
 * command (exec request, the connection's private key, the host key checked only when `hostKey`
 * is set), no OpenSSH client started per command (that cost 15% of a 32-laptop apply's wall time
 * here). As with OpenSSH's ConnectTimeout=5, the TCP connection must open within 5 s; the
 * handshake then may take its time (64 at once on two cores took more than 5 s). A connection
 * that fails exits 255, as ssh does. With `reuse`, see SshRunnerOptions.
 */
export function sshRunner(opts: SshRunnerOptions = {}): SshRunner {
  type Kept = { client: Client; active: number };
  const pool = new Map<string, Kept[]>();
  const drop = (key: string, conn: Kept) => pool.set(key, (pool.get(key) ?? []).filter((x) => x !== conn));
  const open = async (c: Record<string, any>): Promise<Client | RunResult> => {
    self.connections++;
    return dial(c);
  };
  const self: SshRunner = {
    connections: 0,
    close: () => {
      for (const conns of pool.values()) for (const x of conns) x.client.end();
      pool.clear();
    },
    run: async (command: RecordedCommand, text: string): Promise<RunResult> => {
      const c = command.connection;
      const host = String(c.host);
      if (!opts.reuse) {
        const client = await open(c);
        if (!(client instanceof Client)) return client;
        const r = await execOn(client, host, text);
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
        const r = await execOn(conn.client, host, text).finally(() => conn.active--);
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
