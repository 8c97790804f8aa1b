// TEST CODE. A scratch network namespace on this machine's kernel, for running rendered scripts
// against real iproute2 and MPTCP without a lab: scripts run inside it, in a private mount
// namespace whose /var/lib and /run are fresh tmpfs, so nothing of this machine is touched.
import { runSync } from "../../scripts/lab/spawner";

export function run(args: string[], input?: string): string {
  const r = runSync(args[0], args.slice(1), input);
  if (r.code !== 0) throw new Error(`${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
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
    const r = this.try(script);
    if (r.code !== 0) throw new Error(`${this.name}: ${script}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  /** Runs a shell command in the namespace and returns its exit code and output, whatever the code. */
  try(script: string): { code: number; stdout: string; stderr: string } {
    return runSync("ip", ["netns", "exec", this.name, "sh", "-c", script]);
  }

  /** Runs a shell command in the namespace with private, empty /var/lib and /run (one call: one fresh state). */
  isolated(script: string): { code: number; stdout: string; stderr: string } {
    return runSync("ip", ["netns", "exec", this.name, "unshare", "--mount", "--propagation", "private", "sh", "-c", `mount -t tmpfs tmpfs /var/lib && mount -t tmpfs tmpfs /run && ${script}`]);
  }

  close(): void {
    runSync("ip", ["netns", "del", this.name]);
  }
}
