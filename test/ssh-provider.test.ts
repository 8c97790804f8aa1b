// The simulator's connection follows pulumi-command v1.2.1's (test/harness/ssh.ts, ProviderTimings):
// - dial retries: provider/pkg/provider/remote/connection.go (v1.2.1) `Dial`, `dialWithRetry`,
//   `reachedDialingErrorLimit`, `dialErrorDefault = 10`; the waits from pulumi sdk v3.224.0
//   sdk/go/common/util/retry/until.go `Until` (100 ms, x1.5, at most 5 s);
// - the agent: connection.go (v1.2.1) `SSHConfig` dials `AgentSocketPath` or SSH_AUTH_SOCK
//   (connection_unix.go `tryGetDefaultAgentSocket`, `dialAgent`) even with a private key, and a
//   failed dial returns an error before `dialWithRetry`;
// - the keepalive: golang.org/x/crypto v0.48.0 ssh/client.go `Dial` (net.DialTimeout) and Go's
//   net package (go1.25) `defaultTCPKeepAliveIdle`/`Interval` 15 s, `defaultTCPKeepAliveCount` 9;
//   x/crypto ssh/session.go `ExitMissingError`.
// Every server here is in process on loopback (test/cli-sshd.ts).
import { createServer, Server, Socket, connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordedCommand } from "./harness/program";
import { deadSessionMs, EXIT_MISSING, PROVIDER_TIMINGS, retryDelays, sshRunner } from "./harness/ssh";
import { clientKey, FakeSshd, startSshd } from "./cli-sshd";

/** A connection as the SDK sends it (@pulumi/command 1.2.1 types/input.js fills in dialErrorLimit 10 and perDialTimeout 15). */
const command = (port: number, extra: Record<string, unknown> = {}): RecordedCommand =>
  ({ name: "x", connection: { host: "127.0.0.1", port, user: "root", privateKey: clientKey, dialErrorLimit: 10, perDialTimeout: 15, ...extra } }) as unknown as RecordedCommand;

/** A TCP server that accepts and at once closes: every SSH handshake with it fails. Counts the connections. */
async function slammer(): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  let n = 0;
  const srv: Server = createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  return { port: (srv.address() as { port: number }).port, accepted: () => n, close: () => new Promise((r) => srv.close(() => r())) };
}

/** A TCP relay to `port` that can cut the path: after cut(), bytes either way are dropped, nothing is closed. */
async function relay(port: number): Promise<{ port: number; cut: () => void; close: () => Promise<void> }> {
  let cut = false;
  const socks = new Set<Socket>();
  const srv = createServer((a) => {
    const b = connect({ host: "127.0.0.1", port });
    socks.add(a).add(b);
    a.on("data", (d) => cut || b.write(d));
    b.on("data", (d) => cut || a.write(d));
    a.on("error", () => undefined);
    b.on("error", () => undefined);
    a.on("close", () => b.destroy());
    b.on("close", () => a.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  return {
    port: (srv.address() as { port: number }).port,
    cut: () => (cut = true),
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise((r) => srv.close(() => r()));
    },
  };
}

describe("the provider's connection (pulumi-command v1.2.1 connection.go; x/crypto v0.48.0; Go net)", () => {
  let ok: FakeSshd;
  let silent: FakeSshd;
  beforeAll(async () => {
    ok = await startSshd("ok", 1, "hello");
    silent = await startSshd("silent");
  });
  afterAll(async () => {
    await ok.close();
    await silent.close();
  });

  it("the real timings: 11 dials with 10 waits of 11.33 s in all (retry.Until), a silent session dies 150 s after the server's last segment", () => {
    const waits = retryDelays(PROVIDER_TIMINGS, PROVIDER_TIMINGS.dialErrorLimit + 1);
    expect(waits.length).toBe(10);
    expect(waits.slice(0, 3)).toEqual([100, 150, 225]);
    expect(waits.every((w) => w <= 5000)).toBe(true);
    expect(waits.reduce((a, b) => a + b, 0)).toBeCloseTo(11333, 0);
    expect(deadSessionMs(PROVIDER_TIMINGS)).toBe(150_000);
    expect(PROVIDER_TIMINGS.perDialTimeoutMs).toBe(15_000);
  });

  it("a refused port: 11 dials over about 11.3 s (real timings), then `after 10 failed attempts: dial tcp ...: connect: connection refused`", async () => {
    const s = await slammer();
    const port = s.port;
    await s.close(); // nothing listens there now
    const runner = sshRunner({ env: {} });
    const t0 = performance.now();
    const r = await runner.run(command(port), "true", "create");
    const ms = performance.now() - t0;
    console.log(`refused: ${runner.dials} dials in ${(ms / 1000).toFixed(2)} s: ${r.stderr}`);
    expect(r.code).toBe(255);
    expect(r.stderr).toBe(`after 10 failed attempts: dial tcp 127.0.0.1:${port}: connect: connection refused`);
    expect(runner.dials).toBe(11);
    expect(ms).toBeGreaterThan(11_300);
    expect(ms).toBeLessThan(14_000);
  }, 30_000);

  it("handshake failures are retried too (shortened waits): 11 connections reach the server; dialErrorLimit on the connection wins; -1 would retry forever", async () => {
    const s = await slammer();
    try {
      const runner = sshRunner({ env: {}, timings: { retryDelayMs: 1, retryMaxDelayMs: 1 } });
      const r = await runner.run(command(s.port), "true", "create");
      expect(r.stderr).toMatch(/^after 10 failed attempts: ssh: handshake failed: /);
      expect(s.accepted()).toBe(11);
      const two = await runner.run(command(s.port, { dialErrorLimit: 2 }), "true", "create");
      expect(two.stderr).toMatch(/^after 2 failed attempts: /);
      expect(s.accepted()).toBe(11 + 3);
      // a test's explicit shortening wins over the connection's
      const one = await sshRunner({ env: {}, timings: { dialErrorLimit: 0 } }).run(command(s.port), "true", "create");
      expect(one.stderr).toMatch(/^after 0 failed attempts: /);
      expect(s.accepted()).toBe(11 + 3 + 1);
    } finally {
      await s.close();
    }
  });

  it("a host key that is not the server's: `ssh: handshake failed: ssh: host key mismatch`, retried; the right one connects", async () => {
    const runner = sshRunner({ env: {}, timings: { retryDelayMs: 1, retryMaxDelayMs: 1 } });
    const other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const bad = await runner.run(command(ok.ports[0], { hostKey: other }), "true", "create");
    expect(bad.stderr).toBe("after 10 failed attempts: ssh: handshake failed: ssh: host key mismatch");
    const good = await runner.run(command(ok.ports[0], { hostKey: ok.hostKey }), "true", "create");
    expect(good).toEqual({ stdout: "hello", stderr: "", code: 0 });
  });

  it("SSH_AUTH_SOCK that leads nowhere fails the command even with privateKey set, at once and without retries; unset, the same command runs", async () => {
    const runner = sshRunner({ env: { SSH_AUTH_SOCK: "/nonexistent/agent.sock" } });
    const t0 = performance.now();
    const r = await runner.run(command(ok.ports[0]), "true", "create");
    expect(r).toEqual({ stdout: "", stderr: "dial unix /nonexistent/agent.sock: connect: no such file or directory", code: 255 });
    expect(runner.dials).toBe(0);
    expect(performance.now() - t0).toBeLessThan(1000);
    // control: the way out README gives (unset SSH_AUTH_SOCK for pulumi up)
    const unset = sshRunner({ env: {} });
    expect((await unset.run(command(ok.ports[0]), "true", "create")).code).toBe(0);
    // and agentSocketPath on the connection wins over the environment, as in SSHConfig
    const own = sshRunner({ env: {} });
    expect((await own.run(command(ok.ports[0], { agentSocketPath: "/nonexistent/other.sock" }), "true", "create")).stderr).toMatch(/^dial unix \/nonexistent\/other\.sock: /);
  });

  it("keepalive (shortened: idle 200 ms, interval 200 ms, 3 probes; real 15 s, 15 s, 9): a cut path ends the silent session with Wait's error; uncut, the answered probes keep it alive", async () => {
    const timings = { keepIdleMs: 200, keepIntervalMs: 200, keepCount: 3 };
    const path = await relay(silent.ports[0]);
    try {
      // control: the server answers the probes, so a command silent for 3 s (several dead windows) is still running
      const alive = sshRunner({ env: {}, timings });
      const pending = alive.run(command(path.port), "sleep", "create");
      const raced = await Promise.race([pending.then(() => "ended"), new Promise((r) => setTimeout(() => r("running"), 3000))]);
      expect(raced).toBe("running");
      // the cut: after idle + 3 x interval without a byte from the server, the connection is aborted
      const t0 = performance.now();
      path.cut();
      const r = await pending;
      const ms = performance.now() - t0;
      console.log(`cut: the session failed ${ms.toFixed(0)} ms after the cut (model: at most ${200 + 3 * 200} ms after the last bytes): ${r.stderr.split("\n")[0]}`);
      expect(r.code).toBe(255);
      expect(r.stderr.startsWith(EXIT_MISSING)).toBe(true);
      expect(ms).toBeGreaterThan(3 * 200 - 50);
      expect(ms).toBeLessThan(200 + 3 * 200 + 500);
    } finally {
      await path.close();
    }
  });
});
