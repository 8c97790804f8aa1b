// TEST CODE. A Runner that executes a command text the way the command provider does: one new
// SSH connection per command, the text as the exec request, the private key from the
// connection, and the host key checked only when `hostKey` is set. Uses the OpenSSH client.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RecordedCommand } from "./program";
import { Runner, RunResult } from "./provider";

export interface SshRunner {
  run: Runner;
  /** Removes the temporary key and known_hosts files. */
  close(): void;
  /** How many SSH connections were opened. */
  connections: number;
}

export function sshArgs(connection: Record<string, any>, dir: string): string[] {
  const port = connection.port ?? 22;
  const args = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "-o", "GlobalKnownHostsFile=/dev/null", "-p", String(port)];
  if (connection.hostKey) {
    const known = join(dir, `known_hosts-${connection.host}-${port}`);
    writeFileSync(known, `${port === 22 ? connection.host : `[${connection.host}]:${port}`} ${connection.hostKey}\n`);
    args.push("-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${known}`);
  } else {
    args.push("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null");
  }
  if (connection.privateKey) {
    const key = join(dir, "key");
    writeFileSync(key, connection.privateKey.endsWith("\n") ? connection.privateKey : connection.privateKey + "\n", { mode: 0o600 });
    args.push("-o", "IdentitiesOnly=yes", "-i", key);
  }
  args.push(`${connection.user ?? "root"}@${connection.host}`);
  return args;
}

export function sshRunner(): SshRunner {
  const dir = mkdtempSync(join(tmpdir(), "mptcp-ssh-"));
  const self: SshRunner = {
    connections: 0,
    close: () => rmSync(dir, { recursive: true, force: true }),
    run: (command: RecordedCommand, text: string): Promise<RunResult> =>
      new Promise((resolve, reject) => {
        self.connections++;
        const child = spawn("ssh", [...sshArgs(command.connection, dir), "--", text], { stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", reject);
        child.on("close", (code) => resolve({ stdout: stdout.replace(/\n$/, ""), stderr: stderr.replace(/\n$/, ""), code: code ?? -1 }));
      }),
  };
  return self;
}
