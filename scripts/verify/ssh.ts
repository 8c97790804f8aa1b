// One SSH connection per host for the read-only tools (npm run verify, npm run check): many
// commands over it (ssh2), instead of a connection per command. Host keys are checked against
// the stack config exactly as the command provider does: `ssh.hostKey` must match, unless the
// config says insecureIgnoreHostKey.
import { readFileSync } from "node:fs";
import { Client, ClientChannel } from "ssh2";
import { HostModel } from "../../components/model";
import { shq, wrapScript } from "../../components/shell";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Session {
  host: HostModel;
  /** Runs a command (as root: through `sudo -n` for another login user) and collects its output. */
  exec(command: string): Promise<ExecResult>;
  /** Starts a command and hands over its channel (stdout, stderr, close). */
  start(command: string): Promise<ClientChannel>;
  /** Runs a rendered host script delivered as `pulumi up` delivers it (wrapScript: sh -s, sudo -n for another user). */
  script(text: string): Promise<ExecResult>;
  close(): void;
}

export interface Credentials {
  /** A private key (PEM/OpenSSH text); else the agent at SSH_AUTH_SOCK. */
  privateKey?: string;
  /** Seconds to wait for the connection. */
  timeout?: number;
}

/** Credentials from `--identity FILE`, else the SSH agent. */
export function credentialsFrom(identity: string | undefined): Credentials {
  if (identity !== undefined) return { privateKey: readFileSync(identity, "utf8") };
  if (!process.env.SSH_AUTH_SOCK) throw new Error("no --identity KEY given and no SSH agent (SSH_AUTH_SOCK is unset)");
  return {};
}

export class UnreachableError extends Error {}

/** Whether a host key the server presents (its wire blob) is the one the config pins. */
export function hostKeyMatches(host: HostModel, blob: Buffer): boolean {
  if (!host.ssh.hostKey) return host.ssh.insecureIgnoreHostKey;
  return Buffer.from(host.ssh.hostKey.split(" ")[1], "base64").equals(blob);
}

export function connect(host: HostModel, creds: Credentials): Promise<Session> {
  const at = `${host.name} (${host.ssh.user}@${host.ssh.host}:${host.ssh.port}, mptcp:hosts[${host.index}].ssh)`;
  const client = new Client();
  const wrap = (command: string) => (host.ssh.user === "root" ? command : `sudo -n sh -c ${shq(command)}`);
  const open = (text: string) => new Promise<ClientChannel>((resolve, reject) => client.exec(text, (err, ch) => (err ? reject(err) : resolve(ch))));
  const collect = async (text: string): Promise<ExecResult> => {
    const ch = await open(text);
    return new Promise((resolve) => {
      let stdout = "";
      let stderr = "";
      ch.on("data", (d: Buffer) => (stdout += d));
      ch.stderr.on("data", (d: Buffer) => (stderr += d));
      ch.on("close", (code: number | null) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  };
  const session: Session = {
    host,
    start: (command) => open(wrap(command)),
    exec: (command) => collect(wrap(command)),
    script: (text) => collect(wrapScript(text, { user: host.ssh.user, host: host.name })),
    close: () => client.end(),
  };
  return new Promise((resolve, reject) => {
    let keyMismatch = false;
    client
      // TCP_NODELAY, as OpenSSH and Go's net package set it: each exec's small requests and
      // replies are not held back waiting for the previous one's ACK (delayed ACK: 40 ms each)
      .on("connect", () => client.setNoDelay(true))
      .on("ready", () => resolve(session))
      .on("error", (e) => reject(new UnreachableError(keyMismatch ? `${at}: the host key does not match ssh.hostKey: check it with ssh-keyscan, or someone is in the middle` : `${at}: ${e.message}`)))
      .connect({
        host: host.ssh.host,
        port: host.ssh.port,
        username: host.ssh.user,
        readyTimeout: (creds.timeout ?? 10) * 1000,
        ...(creds.privateKey ? { privateKey: creds.privateKey } : { agent: process.env.SSH_AUTH_SOCK }),
        hostVerifier: (blob: Buffer) => {
          keyMismatch = !hostKeyMatches(host, blob);
          return !keyMismatch;
        },
      });
  });
}

/** Sessions to every named host, opened in parallel; those that fail are reported, not thrown. */
export async function connectAll(hosts: HostModel[], creds: Credentials): Promise<{ sessions: Map<string, Session>; unreachable: Map<string, string> }> {
  const sessions = new Map<string, Session>();
  const unreachable = new Map<string, string>();
  await Promise.all(
    hosts.map((h) =>
      connect(h, creds).then(
        (s) => sessions.set(h.name, s),
        (e: Error) => unreachable.set(h.name, e.message),
      ),
    ),
  );
  return { sessions, unreachable };
}
