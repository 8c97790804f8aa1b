// TEST CODE. A scratch network namespace on this machine's kernel, for running rendered scripts
// against real iproute2 and MPTCP without a lab: scripts run inside it, in a private mount
// namespace whose /var/lib and /run are fresh tmpfs, so nothing of this machine is touched.
import { spawnSync } from "node:child_process";

export function run(args: string[], input?: string): string {
  const r = spawnSync(args[0], args.slice(1), { encoding: "utf8", input });
  if (r.status !== 0) throw new Error(`${args.join(" ")}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

export class ScratchNs {
  readonly name: string;

  constructor(prefix: string) {
    this.name = `${prefix}-${Math.random().toString(16).slice(2, 6)}`;
    run(["ip", "netns", "add", this.name]);
    this.sh("ip link set lo up");
  }

  /** Runs a shell command in the namespace; throws on a non-zero exit. */
  sh(script: string): string {
    return run(["ip", "netns", "exec", this.name, "sh", "-c", script]);
  }

  /** Runs a shell command in the namespace with private, empty /var/lib and /run (one call: one fresh state). */
  isolated(script: string): { code: number; stdout: string; stderr: string } {
    const r = spawnSync("ip", ["netns", "exec", this.name, "unshare", "--mount", "--propagation", "private", "sh", "-c", `mount -t tmpfs tmpfs /var/lib && mount -t tmpfs tmpfs /run && ${script}`], { encoding: "utf8" });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  close(): void {
    spawnSync("ip", ["netns", "del", this.name]);
  }
}
