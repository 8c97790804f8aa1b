// What the command provider's SSH connection does, against lab laptops' OpenSSH (9.2), with the
// simulator's runner modelling pulumi-command v1.2.1 (test/harness/ssh.ts, ProviderTimings):
// - RSA host keys: connection.go (v1.2.1) `SSHConfig` pins `hostKey` with
//   `HostKeyAlgorithms: []string{publicKey.Type()}`, i.e. only `ssh-rsa` (SHA-1) for an RSA key;
//   OpenSSH >= 8.8 does not offer it: every dial fails. Validation refuses such a hostKey.
// - The agent: `SSHConfig` dials SSH_AUTH_SOCK (connection_unix.go `tryGetDefaultAgentSocket`)
//   even with a private key; README's "leave privateKey unset to use the agent" with a real ssh-agent.
// - A stalled apply session: Go's TCP keepalive (net package: 15 s idle, 15 s interval, 9 probes;
//   x/crypto v0.48.0 ssh.Dial is net.DialTimeout; no SSH keepalive) kills a silent session 150 s
//   after the server's last segment. Shortened here, explicitly, by 15x (1 s, 1 s, 9: 10 s), so
//   the schema's bound scales to 90 / 15 = 6 s: confirmTimeout 4 rolls back inside the window and
//   the apply's session survives; confirmTimeout 15 (more than the window) loses the session first.
import { spawn, spawnSync, ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireValidConfig, STATE_DIR } from "../components";
import { LabHost, labAddUser, labExec, labSh, labStackConfig, portOpen } from "../scripts/lab/lab";
import { readTopology, validateTopology } from "../scripts/lab/topology";
import { sleep, waitFor } from "../scripts/lab/wait";
import { labFile } from "./harness/fixture";
import { RecordedCommand, runProgram } from "./harness/program";
import { CommandProviderSim } from "./harness/provider";
import { EXIT_MISSING, PROVIDER_TIMINGS, sshRunner, SshRunner } from "./harness/ssh";
import { uplinkRoutingConfig } from "./harness/labtest";

// SSH reaches the client through router r1 (as in lab.rollback.test.ts); this file's uplink takes
// 198.51.100.224/28 (the other router labs that may run beside it route .32, .48 and .208).
const fixture = readTopology(join(__dirname, "fixtures", "router.topology.yaml"));
const topology = validateTopology({ ...fixture, paths: fixture.paths.map((p) => (p.name === "uplink" ? { ...p, subnet: "198.51.100.224/28" } : p)) });
const GATEWAY = "198.51.100.225"; // r1 on the uplink
const WRONG = "198.51.100.232"; // nobody
/** Go's keepalive shortened 15x (real: PROVIDER_TIMINGS, 15 s, 15 s, 9): a silent session dies 10 s after the server's last segment. */
const SHORT_KEEPALIVE = { keepIdleMs: 1000, keepIntervalMs: 1000, keepCount: 9 };
const SCALE = PROVIDER_TIMINGS.keepIdleMs / SHORT_KEEPALIVE.keepIdleMs;

// one connection per command, as the provider: the subject is the connection
const f = labFile(topology, "k", { reuseSsh: false });
let server: LabHost;
let client: LabHost;
const cleanups: (() => void)[] = [];

const sshOf = (h: LabHost) => (labStackConfig(f.lab).hosts as { name: string; ssh: Record<string, unknown> }[]).find((x) => x.name === h.name)!.ssh;
const probe = (h: LabHost, extra: Record<string, unknown> = {}): RecordedCommand =>
  ({ name: "probe", urn: "", connection: { ...sshOf(h), privateKey: f.privateKey, ...extra }, dependsOn: [], deleteBeforeReplace: false, inputs: {} }) as RecordedCommand;
/** This machine's OpenSSH client against `h`, with a known_hosts line and the given host key algorithms. */
function opensshTo(h: LabHost, knownLine: string, algos: string): { code: number; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), "mptcp-kh-"));
  try {
    writeFileSync(join(dir, "known_hosts"), `${h.mgmtAddress} ${knownLine}\n`);
    const r = spawnSync(
      "ssh",
      [
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        `UserKnownHostsFile=${join(dir, "known_hosts")}`,
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        `HostKeyAlgorithms=${algos}`,
        "-o",
        "IdentitiesOnly=yes",
        "-i",
        f.lab.privateKeyFile,
        `root@${h.mgmtAddress}`,
        "true",
      ],
      { encoding: "utf8", env: { PATH: process.env.PATH } },
    );
    return { code: r.status ?? -1, stderr: r.stderr.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const restartSshd = async (h: LabHost) => {
  labSh(h, "systemctl restart mptcp-lab-sshd");
  await waitFor(`sshd of ${h.name}`, 10_000, () => portOpen(h.mgmtAddress, 22));
};

beforeAll(async () => {
  server = f.host("server");
  client = f.host("client");
});

afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) c();
});

describe("the command provider's SSH connection against lab laptops (pulumi-command v1.2.1)", () => {
  it("an RSA hostKey: the provider's only offer, ssh-rsa, is refused by the laptop's OpenSSH; validation refuses the key with the fix; control: an sshd that still offers ssh-rsa, and the ed25519 key", async () => {
    labSh(
      server,
      `test -e /etc/ssh/mptcp-lab/ssh_host_rsa_key || ssh-keygen -q -t rsa -b 3072 -N '' -C '' -f /etc/ssh/mptcp-lab/ssh_host_rsa_key
echo 'HostKey /etc/ssh/mptcp-lab/ssh_host_rsa_key' >> /etc/ssh/mptcp-lab/sshd_config`,
    );
    await restartSshd(server);
    const scanned = spawnSync("ssh-keyscan", ["-t", "rsa", server.mgmtAddress], { encoding: "utf8" }).stdout.trim();
    const rsa = scanned.split(" ").slice(1).join(" ");
    expect(rsa).toMatch(/^ssh-rsa AAAA/);
    // the provider's offer (real dial timings: 11 dials)
    const runner = sshRunner({ env: {} });
    const t0 = performance.now();
    const r = await runner.run(probe(server, { hostKey: rsa }), "true", "create");
    console.log(`RSA hostKey: ${runner.dials} dials in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${r.stderr}`);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/^after 10 failed attempts: ssh: handshake failed: ssh: no common algorithm for host key; we offered: \[ssh-rsa\], peer offered: \[[^\]]*rsa-sha2-512[^\]]*\]$/);
    expect(runner.dials).toBe(11);
    // this machine's OpenSSH client agrees: offering ssh-rsa alone fails; the same key with rsa-sha2-512 connects
    const sha1 = opensshTo(server, rsa, "ssh-rsa");
    expect(sha1.code).toBe(255);
    expect(sha1.stderr).toMatch(/no matching host key type found\. Their offer: .*rsa-sha2-512/);
    expect(opensshTo(server, rsa, "rsa-sha2-512").code).toBe(0);
    // validation refuses what ssh-keyscan -t rsa prints and names the fix; the ed25519 line passes
    const cfg = labStackConfig(f.lab) as { hosts: any[]; links: unknown[] };
    cfg.hosts.find((h) => h.name === "server").ssh.hostKey = rsa;
    let msg = "";
    try {
      requireValidConfig(cfg);
    } catch (e) {
      msg = (e as Error).message;
    }
    const idx = cfg.hosts.findIndex((h) => h.name === "server");
    expect(msg).toMatch(new RegExp(`mptcp:hosts\\[${idx}\\]\\.ssh\\.hostKey: is an RSA key \\(ssh-rsa\\).*use the host's ed25519 or ecdsa key, e\\.g\\. ssh-keyscan -t ed25519 HOST`));
    const ed = spawnSync("ssh-keyscan", ["-t", "ed25519", server.mgmtAddress], { encoding: "utf8" }).stdout.trim().split(" ").slice(1).join(" ");
    cfg.hosts[idx].ssh.hostKey = ed;
    expect(() => requireValidConfig(cfg)).not.toThrow();
    expect((await sshRunner({ env: {} }).run(probe(server, { hostKey: ed }), "true", "create")).code).toBe(0);
    // control: the same RSA pin works against an sshd that still offers ssh-rsa (as before OpenSSH 8.8)
    labSh(server, "echo 'HostKeyAlgorithms +ssh-rsa' >> /etc/ssh/mptcp-lab/sshd_config");
    await restartSshd(server);
    try {
      expect(await sshRunner({ env: {} }).run(probe(server, { hostKey: rsa }), "echo ok", "create")).toEqual({ stdout: "ok", stderr: "", code: 0 });
    } finally {
      labSh(server, "sed -i '/ssh-rsa\\|ssh_host_rsa_key/d' /etc/ssh/mptcp-lab/sshd_config; rm -f /etc/ssh/mptcp-lab/ssh_host_rsa_key*");
      await restartSshd(server);
    }
  });

  it("the agent: privateKey unset, a real ssh-agent holding the key, up and destroy work (README); control: the agent without the key fails auth; a stale SSH_AUTH_SOCK fails even with privateKey, unset it works", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mptcp-agent-"));
    const sock = join(dir, "agent.sock");
    const agent: ChildProcess = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
    cleanups.push(() => {
      agent.kill();
      rmSync(dir, { recursive: true, force: true });
    });
    await waitFor("ssh-agent's socket", 5000, () => spawnSync("ssh-add", ["-l"], { env: { SSH_AUTH_SOCK: sock } }).status === 1);
    const add = spawnSync("ssh-add", [f.lab.privateKeyFile], { env: { SSH_AUTH_SOCK: sock }, encoding: "utf8" });
    expect(add.status, add.stderr).toBe(0);
    const env = { SSH_AUTH_SOCK: sock };
    // the program without mptcp:sshPrivateKey: connections carry no privateKey
    const cfg = labStackConfig(f.lab) as { hosts: any[]; links: unknown[] };
    const only = { hosts: cfg.hosts.filter((h) => h.name === "server"), links: [] };
    const program = await runProgram(only, {});
    expect(program.commands.every((c) => c.connection.privateKey === undefined)).toBe(true);
    const withAgent = sshRunner({ env });
    const sim = new CommandProviderSim(withAgent.run);
    const steps = await sim.up(program.commands);
    console.log(`agent: up ran ${steps.length} commands over ${withAgent.connections} connections authenticated by the agent`);
    expect(steps.length).toBeGreaterThan(0);
    expect(labSh(server, "ip mptcp limits show")).toMatch(/subflows \d/);
    // control: the same agent without the key: the provider cannot log in
    expect(spawnSync("ssh-add", ["-D"], { env }).status).toBe(0);
    const noKey = await sshRunner({ env, timings: { retryDelayMs: 1, retryMaxDelayMs: 1 } }).run({ ...program.commands[0], connection: { ...program.commands[0].connection } }, "true", "create");
    expect(noKey.stderr).toMatch(/^after 10 failed attempts: ssh: handshake failed: ssh: unable to authenticate, attempted methods \[none publickey\]/);
    expect(spawnSync("ssh-add", [f.lab.privateKeyFile], { env }).status).toBe(0);
    expect((await sim.destroy()).length).toBe(steps.length);
    // a stale SSH_AUTH_SOCK (an agent gone: its socket left behind, or a forwarded one of a closed session)
    agent.kill();
    await waitFor("ssh-agent to exit", 5000, () => agent.exitCode !== null || agent.signalCode !== null);
    writeFileSync(join(dir, "stale.sock"), "");
    for (const stale of [sock, join(dir, "stale.sock")]) {
      const r = await sshRunner({ env: { SSH_AUTH_SOCK: stale } }).run(probe(server), "true", "create");
      console.log(`stale SSH_AUTH_SOCK with privateKey set: ${r.stderr}`);
      expect(r.code).toBe(255);
      expect(r.stderr).toMatch(new RegExp(`^dial unix ${stale.replace(/[.]/g, "\\.")}: connect: (no such file or directory|connection refused)$`));
    }
    // the way out (README): SSH_AUTH_SOCK unset (env -u SSH_AUTH_SOCK pulumi up)
    expect((await sshRunner({ env: {} }).run(probe(server), "true", "create")).code).toBe(0);
  });

  it("a config's ssh.user that is neither root nor the lab's admin: the lab makes it (passwordless sudo, the lab's key) and up and destroy run as it; control: before, the provider cannot log in", async () => {
    const cfg = labStackConfig(f.lab) as { hosts: any[]; links: unknown[] };
    const only = { hosts: cfg.hosts.filter((h) => h.name === "server").map((h) => ({ ...h, ssh: { ...h.ssh, user: "ops" } })), links: [] };
    const program = await runProgram(only, { privateKey: f.privateKey });
    const quick = sshRunner({ env: {}, timings: { retryDelayMs: 1, retryMaxDelayMs: 1 } });
    const before = await quick.run(program.commands[0], "true", "create");
    expect(before.stderr).toMatch(/^after 10 failed attempts: ssh: handshake failed: ssh: unable to authenticate/);
    labAddUser(server, "ops");
    labAddUser(server, "ops"); // again: idempotent
    const limitsBefore = labSh(server, "ip mptcp limits show");
    const sim = new CommandProviderSim(sshRunner({ env: {} }).run);
    const steps = await sim.up(program.commands);
    expect(steps.length).toBeGreaterThan(0);
    expect(labSh(server, `cat ${STATE_DIR}/limits/.owners`)).toContain("|server|ops@");
    await sim.destroy();
    expect(labSh(server, "ip mptcp limits show")).toBe(limitsBefore);
  });

  describe(`a stalled apply session (Go's TCP keepalive shortened ${SCALE}x: ${SHORT_KEEPALIVE.keepIdleMs} ms idle, ${SHORT_KEEPALIVE.keepCount} probes ${SHORT_KEEPALIVE.keepIntervalMs} ms apart; real 15 s, 9 x 15 s: 150 s)`, () => {
    const stack = (gateway: string, confirmTimeout: number) => uplinkRoutingConfig(f.lab, gateway, confirmTimeout);
    const reachable = async (runner: SshRunner) => (await runner.run(probe(client), "true", "create")).code === 0;
    let runner: SshRunner;
    let sim: CommandProviderSim;
    beforeAll(async () => {
      runner = sshRunner({ timings: SHORT_KEEPALIVE, env: {} });
      sim = new CommandProviderSim(runner.run);
      await sim.up((await runProgram(stack(GATEWAY, 4), { privateKey: f.privateKey })).commands);
    });

    it("a cut that nothing restores: the session dies with Wait's error about 10 s (real: 150 s) after the server's last segment; control: a cut restored within the window, the command finishes", async () => {
      const silent = (cut: () => void, restoreAfterMs?: number) => {
        const t0 = performance.now();
        const pending = runner.run(probe(client), "sleep 1; echo done", "create");
        return (async () => {
          await sleep(200);
          cut();
          if (restoreAfterMs !== undefined) {
            await sleep(restoreAfterMs);
            labSh(client, "ip route del blackhole default table 99; ip rule del pref 99 lookup 99");
          }
          const r = await pending;
          return { r, ms: performance.now() - t0 };
        })();
      };
      // the cut: every reply of the laptop dropped (a rule before main sending everything to a blackhole)
      const cut = () => labSh(client, "ip route add blackhole default table 99; ip rule add pref 99 lookup 99");
      const dead = await silent(cut);
      labSh(client, "ip route del blackhole default table 99; ip rule del pref 99 lookup 99");
      console.log(`cut, never restored: the command failed after ${(dead.ms / 1000).toFixed(1)} s: ${dead.r.stderr.split("\n")[0]}`);
      expect(dead.r.code).toBe(255);
      expect(dead.r.stderr.startsWith(EXIT_MISSING)).toBe(true);
      expect(dead.ms).toBeGreaterThan(8000);
      expect(dead.ms).toBeLessThan(13_000);
      // control: the same cut, restored after 5 s (inside the 8 s guaranteed after a cut): the session lives, the command reports
      const lived = await silent(cut, 5000);
      console.log(`cut, restored after 5 s: ${lived.r.code === 0 ? "finished" : "failed"} after ${(lived.ms / 1000).toFixed(1)} s: ${lived.r.stdout}`);
      expect(lived.r).toEqual({ stdout: "done", stderr: "", code: 0 });
    });

    it(`confirmTimeout inside the window (4 s; the schema's 90 s scaled: ${90 / SCALE} s): the rollback restores the path, the apply's session survives and reports, the confirmation says it was rolled back; control: 15 s (past the window): the apply's session dies first`, async () => {
      // inside the window
      const t0 = performance.now();
      const err = await sim.up((await runProgram(stack(WRONG, 4), { privateKey: f.privateKey })).commands).then(
        () => undefined,
        (e: Error) => e,
      );
      const ms = performance.now() - t0;
      console.log(`confirmTimeout 4: up failed after ${(ms / 1000).toFixed(1)} s: ${err?.message.split("\n")[0]}`);
      expect(err?.message).toMatch(/^create of client-hooks-confirm failed/);
      expect(err?.message).toMatch(/the last apply of hooks was rolled back at/);
      expect(await reachable(runner)).toBe(true);
      // past the window: the apply cuts its own path and its session dies before the rollback
      const t1 = performance.now();
      const lost = await sim.up((await runProgram(stack(WRONG, 15), { privateKey: f.privateKey })).commands).then(
        () => undefined,
        (e: Error) => e,
      );
      const lostMs = performance.now() - t1;
      console.log(`confirmTimeout 15: up failed after ${(lostMs / 1000).toFixed(1)} s: ${lost?.message.split("\n").slice(0, 2).join(" | ")}`);
      expect(lost?.message).toMatch(/^create of client-hooks failed \(exit 255\):\nwait: remote command exited without exit status or exit signal/);
      expect(lostMs).toBeLessThan(15_000);
      // the host still rolls back by itself afterwards
      await waitFor("the rollback to restore SSH", 30_000, () => reachable(runner), 500);
      expect(labExec(client, `test -e ${STATE_DIR}/hooks/rolled-back`).code).toBe(0);
    });
  });
});
