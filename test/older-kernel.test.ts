// The sysctl scripts on an older kernel's /proc/sys/net/mptcp (5.15: pm_type, no path_manager,
// no blackhole_timeout), emulated by a tmpfs over that directory in a private mount namespace,
// with private /etc/sysctl.d and /var/lib, so nothing of this machine is touched.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { buildModel, configSchema, renderConcern } from "../components";

const KNOBS_5_15 = { enabled: "1", add_addr_timeout: "120", checksum_enabled: "0", allow_join_initial_addr_port: "1", pm_type: "0", stale_loss_cnt: "4" };

function onOldKernel(script: string, after: string): { code: number; stdout: string; stderr: string } {
  const setup = [
    "mount -t tmpfs tmpfs /proc/sys/net/mptcp",
    ...Object.entries(KNOBS_5_15).map(([k, v]) => `echo ${v} > /proc/sys/net/mptcp/${k}`),
    "mount -t tmpfs tmpfs /etc/sysctl.d",
    "mount -t tmpfs tmpfs /var/lib",
    "mount -t tmpfs tmpfs /run",
  ].join(" && ");
  const r = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", `${setup} && { sh -s <<'EOS'\n${script}\nEOS\n} ; echo "rc=$?"; ${after}`], { encoding: "utf8" });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const host = (sysctl: object) => buildModel(configSchema.parse({ hosts: [{ name: "old", ssh: { host: "h", insecureIgnoreHostKey: true }, sysctl }] })).hosts[0];
const dump = 'echo ---; for f in /proc/sys/net/mptcp/*; do echo "${f##*/}=$(cat $f)"; done; ls -A /etc/sysctl.d /var/lib; cat /etc/sysctl.d/* 2>/dev/null || true';

describe("sysctl on an older kernel (emulated /proc/sys/net/mptcp of 5.15)", () => {
  it("a knob the kernel lacks fails naming the knob and host, and changes nothing", () => {
    const s = renderConcern(host({ enabled: false, pathManager: "kernel", blackholeTimeout: 0 }), "sysctl");
    const r = onOldKernel(s.apply, dump);
    expect(r.stdout).toMatch(/rc=1/);
    expect(r.stderr).toMatch(/mptcp-pulumi\[old\]: error: sysctl\.blackholeTimeout: this kernel \(.*\) has no net\.mptcp\.blackhole_timeout: remove blackholeTimeout or upgrade the kernel/);
    const state = r.stdout.split("---")[1];
    expect(state).toContain("enabled=1");
    expect(state).toContain("pm_type=0");
    expect(state).not.toMatch(/mptcp-pulumi/);
  });

  it("pathManager falls back to pm_type, persists it, and revert restores the original", () => {
    const s = renderConcern(host({ enabled: true, pathManager: "userspace" }), "sysctl");
    const r = onOldKernel(`${s.apply}\nEOS\n} && echo applied && cat /proc/sys/net/mptcp/pm_type && cat /etc/sysctl.d/99-mptcp-pulumi.conf && { sh -s <<'EOS'\n${s.revert}`, dump);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/applied\n1\n# Managed by mptcp-pulumi for host old[^\n]*\nnet\.mptcp\.enabled = 1\nnet\.mptcp\.pm_type = 1\n/);
    const after = r.stdout.split("---")[1];
    expect(after).toContain("pm_type=0");
    expect(after).not.toMatch(/mptcp-pulumi/);
  });
});
