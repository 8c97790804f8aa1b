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

/**
 * Runs each command in process, as the provider's Go SSH client does: a new ssh2 connection per
 * command (exec request, the connection's private key, the host key checked only when `hostKey`
 * is set), no OpenSSH client started per command (that cost 15% of a 32-laptop apply's wall time
 * here). As with OpenSSH's ConnectTimeout=5, the TCP connection must open within 5 s; the
 * handshake then may take its time (64 at once on two cores took more than 5 s). A connection
 * that fails exits 255, as ssh does.
 */
export function sshRunner(): SshRunner {
  const self: SshRunner = {
    connections: 0,
    close: () => undefined,
    run: (command: RecordedCommand, text: string): Promise<RunResult> =>
      new Promise((resolve) => {
        self.connections++;
        const c = command.connection;
        const host = String(c.host);
        const port = Number(c.port ?? 22);
        const client = new Client();
        // TCP_NODELAY, as Go's net package sets on every TCP connection: without it each small
        // handshake message waits for the previous one's delayed ACK (155 ms per command here
        // against 105 ms, measured by hand)
        const sock = connect({ host, port, noDelay: true });
        let finished = false;
        const done = (r: RunResult) => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          client.end();
          sock.destroy();
          resolve({ stdout: r.stdout.replace(/\n$/, ""), stderr: r.stderr.replace(/\n$/, ""), code: r.code });
        };
        const failed = (message: string) => done({ stdout: "", stderr: `ssh: connect to host ${host} port ${port}: ${message}`, code: 255 });
        const timer = setTimeout(() => failed("Connection timed out"), 5000);
        sock.once("error", (e) => failed(e.message));
        sock.once("connect", () => {
          clearTimeout(timer);
          client
            .on("ready", () =>
              client.exec(text, (err, ch) => {
                if (err) return done({ stdout: "", stderr: `ssh: ${err.message}`, code: 255 });
                let stdout = "";
                let stderr = "";
                ch.on("data", (d: Buffer) => (stdout += d));
                ch.stderr.on("data", (d: Buffer) => (stderr += d));
                ch.on("close", (code: number | null) => done({ stdout, stderr, code: code ?? 255 }));
              }),
            )
            .on("error", (e) => done({ stdout: "", stderr: `ssh: ${host}: ${e.message}`, code: 255 }))
            .connect({
              sock,
              username: c.user ?? "root",
              privateKey: c.privateKey,
              readyTimeout: 120_000,
              algorithms: { kex: [KEX] },
              hostVerifier: (key: Buffer) => !c.hostKey || Buffer.from(String(c.hostKey).split(" ")[1], "base64").equals(key),
            });
        });
      }),
  };
  return self;
}
