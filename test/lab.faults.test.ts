// Faults on the host's own disk and files (issue 26, items 3-6, 10, 11), each injected at every
// step where it applies, on a lab laptop that runs every concern:
// - killed (SIGKILL, no trap runs) at each rename of a temporary file into place: the next run on
//   the host is never wedged by what the kill left, and destroy leaves nothing behind;
// - /var/lib/mptcp-pulumi full (a small tmpfs inside the laptop) with 0, 1, 2 ... pages free, so
//   each state write in turn meets the full disk; and read-only: every failure names host,
//   concern and config path, and the host is as it was;
// - a file, a symlink, a dangling symlink or a directory of the admin's at every managed path:
//   replaced (never written through) and restored exactly;
// - a local user who is not root trying to hold the host lock.
// Each has its negative control: the old behaviour (the transaction off, the old restore, no
// sweep of temporary files, a 0644 lock) fails the same check.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONCERN_TABLE, CONCERNS as CONCERN_LIST, LOCK_FILE, renderCheck, requireValidConfig, STATE_DIR, SYSCTL_CONF, wrapScript } from "../components";
import { LabHost, labExec, labSh } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";
import { waitFor } from "../scripts/lab/wait";
import { labFile } from "./harness/fixture";
import { RecordedCommand, runProgram } from "./harness/program";
import { sshArgs } from "./harness/ssh";
import { allConcernsConfig, AllConcernsConfig, snapshot, snapshotDiff, WATCHED_DIRS } from "./harness/labtest";

const f = labFile(DEFAULT_TOPOLOGY, "f");
let client: LabHost;
let cfg: AllConcernsConfig;
/** The client before anything of ours. */
let before: string;
const keyDir = mkdtempSync(join(tmpdir(), "mptcp-faults-"));

/** The client's concerns in apply order (the registry's), each with the config keys its failures name. */
const CONCERNS = CONCERN_LIST.map((concern) => ({ concern, path: CONCERN_TABLE[concern].keys.join(", ") }));

beforeAll(async () => {
  client = f.host("client");
  // (the server takes the joins of the changed config below; the rollback, another fault class,
  // stays out of these runs)
  cfg = allConcernsConfig(f.lab, { serverSubflows: 4, client: { sysctl: { enabled: true, addAddrTimeout: 60, checksumEnabled: true }, confirmTimeout: 0 } });
  before = snapshot(client);
});

afterAll(async () => {
  rmSync(keyDir, { recursive: true, force: true });
});

async function clientCommands(config = cfg): Promise<RecordedCommand[]> {
  return (await runProgram(config, { privateKey: f.privateKey })).commands.filter((c) => c.name.startsWith("client-"));
}
const named = (cmds: RecordedCommand[], name: string) => cmds.find((c) => c.name === `client-${name}`)!;
const run = (c: RecordedCommand, phase: "create" | "delete", prefix = "") => f.ssh.run(c, prefix + (phase === "create" ? c.create! : c.delete!), phase);
/** The commands that run a script of ours (not the scripts' copy or its cleanup), but the confirmations. */
const applies = (cmds: RecordedCommand[]) => cmds.filter((x) => !x.copy && x.create !== undefined && !x.name.endsWith("-confirm"));
async function ok(c: RecordedCommand, phase: "create" | "delete") {
  const r = await run(c, phase);
  expect(r.code, `${c.name} ${phase}: ${r.stderr}`).toBe(0);
  return r;
}

/** Temporary files and staging directories (ours, old versions' too) anywhere under the watched directories. */
const strays = (h: LabHost) => labSh(h, `find ${WATCHED_DIRS.join(" ")} -xdev \\( -name '*.tmp.[0-9]*' -o -name '.tmp.*' -o -name '.mptcp-pulumi.[0-9]*' \\) 2>/dev/null || true`).trim();

/** Starts a create with our own ssh client (the test kills it). */
function startCreate(c: RecordedCommand) {
  const child = spawn("ssh", [...sshArgs(c.connection, keyDir), "--", c.create!], { stdio: ["ignore", "pipe", "pipe"] });
  const done = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? -1)));
  return { child, done };
}

/**
 * A laptop-local `cmd` (first in root's PATH) that hangs at its `n`th call, recording its process
 * group in /run/lab-kill.pgid: every rename (mv) of a temporary file into place, every removal
 * (rm) of saved state, is a kill point.
 */
function killAt(h: LabHost, cmd: string, n: number): () => void {
  const real = labSh(h, `command -v ${cmd}`).trim();
  labSh(
    h,
    `/bin/rm -f /run/lab-kill.*; echo 0 > /run/lab-kill.count; cat > /usr/local/sbin/${cmd} <<'LAB_KILL'
#!/bin/sh
read -r c < /run/lab-kill.count; c=$((c + 1)); echo "$c" > /run/lab-kill.count
if [ "$c" = ${n} ]; then cut -d' ' -f5 /proc/$$/stat > /run/lab-kill.tmp; /bin/mv /run/lab-kill.tmp /run/lab-kill.pgid; sleep 120; fi
exec ${real} "$@"
LAB_KILL
chmod 755 /usr/local/sbin/${cmd}`,
  );
  // (the real rm: the wrapper would count this call too)
  return () => labSh(h, `/bin/rm -f /usr/local/sbin/${cmd} /run/lab-kill.*`);
}

/**
 * Runs the command's create (or delete) killed at the nth call of `cmd`: true when it was killed,
 * false when it completed (fewer calls). `atKill` looks at the host while the run hangs there.
 */
async function killedApply(c: RecordedCommand, n: number, opts: { cmd?: string; phase?: "create" | "delete"; script?: string; atKill?: () => void } = {}): Promise<boolean> {
  const heal = killAt(client, opts.cmd ?? "mv", n);
  const a = startCreate({ ...c, create: opts.script ?? (opts.phase === "delete" ? c.delete : c.create) });
  const hung = () => labExec(client, "[ -e /run/lab-kill.pgid ]").code === 0;
  let exited = false;
  void a.done.then(() => (exited = true));
  await waitFor(`${c.name} to reach call ${n} or finish`, 20_000, () => exited || hung(), 50);
  if (hung()) {
    opts.atKill?.();
    labSh(client, "kill -9 -$(cat /run/lab-kill.pgid)");
  }
  const code = await a.done;
  const killed = hung();
  heal();
  if (!killed) expect(code, `${c.name} completed`).toBe(0);
  return killed;
}

/** The hook directories' files a hook runner would run: every regular file directly in them (dhcpcd and run-parts skip dot names; networkd-dispatcher does not). */
const HOOK_DIRS =
  "/etc/network/if-up.d /etc/network/if-down.d /etc/network/if-post-down.d /etc/NetworkManager/dispatcher.d /etc/dhcp/dhclient-exit-hooks.d /usr/lib/dhcpcd/dhcpcd-hooks /etc/networkd-dispatcher/*.d";
const runnable = () => labSh(client, `find ${HOOK_DIRS} -maxdepth 1 -type f 2>/dev/null | sort || true`).trim();

describe("killed at every rename of a temporary file (items 5, 10, 11)", () => {
  for (const { concern } of CONCERNS) {
    it(`${concern}: a first apply killed at each rename: the next apply is not wedged, the next revert restores everything, and nothing temporary stays`, async () => {
      const cmds = await clientCommands();
      const c = named(cmds, concern);
      // the other concern, applied before: its revert is destroy's (item 11: what destroy runs when the killed create was never stored)
      const other = named(cmds, concern === "limits" ? "sysctl" : "limits");
      let points = 0;
      const runners = runnable();
      for (let n = 1; ; n++) {
        // (a) killed, then the same apply again, then its revert; while it hangs, no temporary
        // file is where a hook runner looks (item 10): only files that were there before or are
        // ours whole
        let seen = "";
        const atKill = () => (seen = runnable());
        if (!(await killedApply(c, n, { atKill }))) {
          await ok(c, "delete");
          break;
        }
        points++;
        const extra = seen.split("\n").filter((f) => f && !runners.split("\n").includes(f));
        for (const f of extra) expect(f, `kill point ${n}`).not.toMatch(/\.tmp\.\d+$|\/\.[^/]*$/);
        await ok(c, "create");
        await ok(c, "delete");
        expect(strays(client), `kill point ${n}`).toBe("");
        expect(snapshotDiff(snapshot(client), before), `kill point ${n}`).toBe(snapshotDiff(before, before));
        // (b) another concern applied, the first apply killed, then destroy: only the other's revert runs
        await ok(other, "create");
        expect(await killedApply(c, n)).toBe(true);
        await ok(other, "delete");
        expect(strays(client), `kill point ${n}, destroy`).toBe("");
        expect(snapshotDiff(snapshot(client), before), `kill point ${n}, destroy`).toBe(snapshotDiff(before, before));
      }
      console.log(`${concern}: ${points} kill points`);
      expect(points).toBeGreaterThan(1);
    });
  }

  it("control (items 10, 11): the old temporary file beside a hook is where its runner looks, and a recovery that left the killed apply's directory leaves it and the lock after destroy", async () => {
    const cmds = await clientCommands();
    const hooks = named(cmds, "hooks");
    // the old way of writing a file: PATH.tmp.PID beside it, with its final mode, then the rename
    const old = hooks.create!.replace(/^file_write\(\) \{\n[\s\S]*?\n\}$/m, () => 'file_write() { _p=$1 _m=$2; shift 2; "$@" > "$_p.tmp.$$" && chmod "$_m" "$_p.tmp.$$" && mv "$_p.tmp.$$" "$_p"; }');
    expect(old).not.toBe(hooks.create);
    let seen = "";
    for (let n = 1; n < 20 && !/\.tmp\.\d+$/m.test(seen); n++) {
      expect(await killedApply(hooks, n, { script: old, atKill: () => (seen = runnable()) })).toBe(true);
      await ok(hooks, "create");
      await ok(hooks, "delete");
    }
    expect(seen).toMatch(/\.tmp\.\d+$/m);
    expect(strays(client)).toBe("");
    expect(snapshot(client)).toBe(before);
    // item 11 the old way: txn_recover without removing what it recovered
    const other = named(cmds, "limits");
    await ok(other, "create");
    expect(await killedApply(named(cmds, "sysctl"), 1)).toBe(true);
    const noTidy = other.delete!.replace(/^\s*rmdir "\$_d" 2>\/dev\/null \|\| true$/m, "").replace(/^\s*txn_debris$/m, "");
    expect(noTidy).not.toBe(other.delete);
    expect((await f.ssh.run(other, noTidy, "delete")).code).toBe(0);
    const left = snapshotDiff(snapshot(client), before);
    expect(left).toContain(`${STATE_DIR}/sysctl`);
    expect(left).toContain(LOCK_FILE);
    labSh(client, `rm -rf ${STATE_DIR} ${LOCK_FILE}`);
    expect(snapshot(client)).toBe(before);
  });

  let revertPoints = 0;
  let revertControls = 0;
  for (const { concern } of CONCERNS) {
    it(`${concern}: a revert killed at each removal of saved state: the next revert finishes it; control: without the resume mark it fails on the state already gone`, async () => {
      const c = named(await clientCommands(), concern);
      let points = 0;
      let reported = 0;
      let checked = false;
      for (let n = 1; ; n++) {
        await ok(c, "create");
        if (!(await killedApply(c, n, { cmd: "rm", phase: "delete" }))) break;
        points++;
        // killed once nothing of the concern's state was left (removing the state directory or
        // the lock): the next revert cannot tell that from state removed by hand, and says so
        if (labExec(client, `[ -d ${STATE_DIR}/${concern} ]`).code !== 0) {
          const r = await run(c, "delete");
          if (r.code !== 0) expect(r.stderr).toMatch(/cannot restore .* is missing/);
          labSh(client, `[ -d ${STATE_DIR} ] || rm -f ${LOCK_FILE}`);
          reported++;
        } else {
          if (!checked && labExec(client, `[ -e ${STATE_DIR}/${concern}/.reverting ]`).code === 0) {
            // npm run check names the half-restored concern until a revert finishes it
            const check = wrapScript(renderCheck({ ...requireValidConfig(cfg).hosts[1], stack: "mptcp/test" }), { user: "root", host: "client" });
            expect((await f.ssh.run(c, check, "create")).stdout).toMatch(new RegExp(`^${concern}\\|a revert of ${concern} was cut short and the host is half restored`, "m"));
            checked = true;
          }
          const unmarked = c.delete!.replace("REVERT_RESUMED=1;", 'REVERT_RESUMED="";');
          expect(unmarked).not.toBe(c.delete);
          const r = await f.ssh.run(c, unmarked, "delete");
          if (r.code !== 0) {
            expect(r.stderr).toMatch(/cannot restore|the \S+ revert failed/);
            revertControls++;
            await ok(c, "delete");
          }
        }
        expect(strays(client), `kill point ${n}`).toBe("");
        expect(snapshotDiff(snapshot(client), before), `kill point ${n}`).toBe(snapshotDiff(before, before));
      }
      expect(checked, "a kill point with the revert's mark").toBe(true);
      revertPoints += points;
      console.log(`${concern}: revert, ${points} kill points (${reported} after its state was gone); ${revertPoints} so far; controls failing so far: ${revertControls}`);
      if (concern === CONCERNS[CONCERNS.length - 1].concern) expect(revertControls).toBeGreaterThan(0);
    }, 240_000);
  }

  it("temporary files an older version left (knobs/KNOB.tmp.PID, a 0755 hook PATH.tmp.PID) are swept, not read; control: without the sweep the apply fails on the knob's", async () => {
    const cmds = await clientCommands();
    await f.sim.up(cmds);
    const applied = snapshot(client);
    const hook = "/usr/local/sbin/mptcp-pulumi-sync";
    const plant = () => labSh(client, `cp ${STATE_DIR}/sysctl/knobs/enabled ${STATE_DIR}/sysctl/knobs/checksum_enabled.tmp.4242 && cp -p ${hook} ${hook}.tmp.4242`);
    // control first: the sweep taken out of the script reproduces the wedge
    plant();
    const noSweep = named(cmds, "sysctl").create!.replace(/^(\s*)state_sweep$/gm, "$1:");
    expect(noSweep).not.toBe(named(cmds, "sysctl").create);
    const wedged = await f.ssh.run(named(cmds, "sysctl"), noSweep, "create");
    expect(wedged.code).not.toBe(0);
    expect(wedged.stderr).toContain("checksum_enabled.tmp.4242");
    // with it: up and destroy succeed, and the strays are gone
    plant();
    await ok(named(cmds, "sysctl"), "create");
    expect(labSh(client, `ls ${STATE_DIR}/sysctl/knobs`).split("\n")).not.toContain("checksum_enabled.tmp.4242");
    expect(snapshot(client).replace(/^.*mptcp-pulumi-sync\.tmp\.4242.*\n/gm, "")).toBe(applied);
    await f.sim.destroy();
    expect(strays(client)).toBe("");
    expect(snapshot(client)).toBe(before);
  });
});

describe("the state directory full or read-only (item 3)", () => {
  const FILLER = `${STATE_DIR}/.lab-filler`;
  /** The snapshot without the filler and the lock (a mount point cannot be removed, so neither is the lock). */
  const snap = () =>
    snapshot(client)
      .split("\n")
      .filter((l) => !l.includes(".lab-filler") && !l.includes(LOCK_FILE))
      .join("\n");
  /** Leaves `pages` pages of 4 KiB free on the tmpfs. */
  const fill = (pages: number) =>
    labSh(client, `rm -f ${FILLER}; a=$(stat -f -c %a ${STATE_DIR}); fallocate -l $(( (a - ${pages}) * 4096 )) ${FILLER}; [ "$(stat -f -c %a ${STATE_DIR})" = ${pages} ]`);
  let base: string;

  beforeAll(() => {
    labSh(client, `mkdir -p ${STATE_DIR} && mount -t tmpfs -o size=1m,mode=700 lab-state ${STATE_DIR}`);
    base = snap();
  });
  afterAll(() => labSh(client, `umount ${STATE_DIR}; rmdir ${STATE_DIR}; rm -f ${LOCK_FILE}`));

  /** Sweeps the free pages from 0 up until the create succeeds; every failure must name host, concern and path and leave `want`. */
  async function sweep(c: RecordedCommand, concern: string, path: string, want: string, prefix = ""): Promise<{ failures: number; changed: number }> {
    let failures = 0;
    let changed = 0;
    for (let pages = 0; pages < 200; pages++) {
      fill(pages);
      const r = await run(c, "create", prefix).finally(() => labSh(client, `rm -f ${FILLER}`));
      if (r.code === 0) return { failures, changed };
      failures++;
      const now = snap();
      if (now !== want) changed++;
      if (prefix) continue;
      expect(r.stderr, `${pages} pages free`).toMatch(new RegExp(`mptcp-pulumi\\[client\\]: error: ${path.replace(/[[\].]/g, "\\$&")}: the ${concern} apply failed`));
      expect(r.stderr).not.toMatch(/^printf: I\/O error$/m);
      expect(snapshotDiff(now, want), `${concern}, ${pages} pages free`).toBe(snapshotDiff(want, want));
    }
    throw new Error(`${concern} never succeeded`);
  }

  it("every first apply, the disk full at each of its state writes in turn, fails naming host, concern and path, and leaves the host as it was; a full disk does not stop a revert", async () => {
    const cmds = await clientCommands();
    for (const { concern, path } of CONCERNS) {
      labSh(client, `rm -f ${FILLER}`);
      const { failures } = await sweep(named(cmds, concern), concern, path, snap());
      console.log(`${concern}: first apply, ${failures} full-disk points`);
      expect(failures).toBeGreaterThan(1);
    }
    // every concern applied: destroy with not a page free
    fill(0);
    try {
      for (const { concern } of [...CONCERNS].reverse()) await ok(named(cmds, concern), "delete");
    } finally {
      labSh(client, `rm -f ${FILLER}`);
    }
    expect(snapshotDiff(snap(), base)).toBe(snapshotDiff(base, base));
  });

  it("every later apply (a changed config), the disk full at each step, leaves each concern as the last up left it; control: with the transaction off the same faults leave the host changed", async () => {
    const cmds = await clientCommands();
    for (const c of applies(cmds)) await ok(c, "create");
    const applied = snap();
    const changed = structuredClone(cfg);
    Object.assign(changed.hosts[1], {
      sysctl: { enabled: true, addAddrTimeout: 30, staleLossCnt: 8 },
      limits: { subflows: 4, addAddrAccepted: 2 },
      endpoints: [
        { interface: "lan", flags: ["subflow"] },
        { interface: "wlan", flags: ["subflow", "backup"] },
      ],
      routing: [{ interface: "wlan", mode: "source", table: 77, priority: 7700 }],
      services: [{ unit: "iperf3.service", mode: "godebug" }],
    });
    const next = await clientCommands(changed);
    for (const { concern, path } of CONCERNS) {
      if (named(next, concern).create === named(cmds, concern).create) continue;
      const { failures } = await sweep(named(next, concern), concern, path, applied);
      console.log(`${concern}: later apply, ${failures} full-disk points`);
      labSh(client, `rm -f ${FILLER}`);
      await ok(named(cmds, concern), "create");
      expect(snap()).toBe(applied);
    }
    // control: the transaction off (what an apply was without it)
    let changedHosts = 0;
    for (const { concern, path } of CONCERNS) {
      if (named(next, concern).create === named(cmds, concern).create) continue;
      changedHosts += (await sweep(named(next, concern), concern, path, applied, "export MPTCP_PULUMI_UNDO=1\n")).changed;
      labSh(client, `rm -f ${FILLER}`);
      await ok(named(cmds, concern), "create");
    }
    console.log(`control: ${changedHosts} full-disk points left the host changed with the transaction off`);
    expect(changedHosts).toBeGreaterThan(0);
    for (const c of applies([...cmds].reverse())) await ok(c, "delete");
    expect(snap()).toBe(base);
  });

  it("read-only: every first apply fails before changing anything, naming host, concern and path", async () => {
    labSh(client, `rm -f ${FILLER}; mount -o remount,ro ${STATE_DIR}`);
    try {
      const cmds = await clientCommands();
      for (const { concern, path } of CONCERNS) {
        const r = await run(named(cmds, concern), "create");
        expect(r.code, concern).not.toBe(0);
        expect(r.stderr).toContain(`mptcp-pulumi[client]: error: ${path}: the ${concern} apply failed before it changed anything`);
        expect(snap()).toBe(base);
      }
    } finally {
      labSh(client, `mount -o remount,rw ${STATE_DIR}`);
    }
  });
});

describe("what stands at a managed path (item 4)", () => {
  /** Every path the client's applies write: our sysctl.d file, the service drop-in, the hooks' files where their subsystem is, the unit's wants link. */
  async function managedPaths(): Promise<string[]> {
    const hooks = named(await clientCommands(), "hooks").create!;
    const files = [...hooks.matchAll(/^(\/[^|\n]+)\|\d{3}\|([^|\n]*)\|/gm)].map((m) => ({ path: m[1], only: m[2] }));
    const present = (d: string) => labExec(client, `[ -d ${d} ]`).code === 0;
    return [
      SYSCTL_CONF,
      "/etc/systemd/system/iperf3.service.d/zz-mptcp-pulumi.conf",
      "/etc/systemd/system/multi-user.target.wants/mptcp-pulumi.service",
      ...files.filter((f) => (!f.only || present(f.only)) && present(f.path.replace(/\/[^/]+$/, ""))).map((f) => f.path),
    ];
  }
  const ADMIN = "/usr/local/sbin/lab-admin";
  /** Puts an admin's `kind` at each path: its own file, a symlink to a file of its own, a dangling symlink, a directory holding a file. */
  function plant(paths: string[], kind: string) {
    labSh(
      client,
      [
        `mkdir -p ${ADMIN}`,
        "mkdir -p /etc/systemd/system/iperf3.service.d",
        ...paths.map((p, i) => {
          const t = `${ADMIN}/target-${i}`;
          return {
            file: `printf 'admin %s\\n' ${i} > ${p}; chmod 640 ${p}`,
            symlink: `printf 'admin target %s\\n' ${i} > ${t}; ln -s ${t} ${p}`,
            dangling: `ln -s ${ADMIN}/gone-${i} ${p}`,
            directory: `mkdir ${p}; printf 'inside %s\\n' ${i} > ${p}/x; chmod 750 ${p}`,
          }[kind];
        }),
      ].join("\n"),
    );
  }
  const unplant = (paths: string[]) => labSh(client, `rm -rf ${ADMIN} ${paths.join(" ")}; rmdir /etc/systemd/system/iperf3.service.d 2>/dev/null || true`);

  for (const kind of ["file", "symlink", "dangling", "directory"]) {
    it(`a ${kind} of the admin's at every managed path: up replaces it with ours (never writing through a link), destroy puts it back exactly`, async () => {
      const paths = await managedPaths();
      expect(paths.length).toBeGreaterThan(5);
      plant(paths, kind);
      const planted = snapshot(client);
      const targets = labSh(client, `cat ${ADMIN}/* 2>/dev/null || true`);
      await f.sim.up(await clientCommands());
      // ours stands at each path: a regular file (the wants link: a link to our unit)
      const types = labSh(client, `for p in ${paths.join(" ")}; do stat -c '%F %n' "$p"; done`)
        .trim()
        .split("\n");
      for (const t of types) expect(t).toMatch(t.endsWith("mptcp-pulumi.service") && t.includes(".wants/") ? /^symbolic link / : /^regular file /);
      expect(labSh(client, `cat ${ADMIN}/* 2>/dev/null || true`)).toBe(targets);
      await f.sim.destroy();
      expect(strays(client)).toBe("");
      expect(snapshotDiff(snapshot(client), planted)).toBe(snapshotDiff(planted, planted));
      unplant(paths);
      expect(snapshot(client)).toBe(before);
    });
  }

  it("control: the old restore (find -type f) leaves our file where the admin's symlink was, and a service's revert stuck on rmdir", async () => {
    const paths = await managedPaths();
    plant(paths, "symlink");
    const planted = snapshot(client);
    const cmds = applies(await clientCommands());
    for (const c of cmds) await ok(c, "create");
    const oldRestore = `file_restore_all() {
  [ -d "$1/files" ] || return 0
  find "$1/files" -type f | while read -r _rec; do
    _path=\${_rec#"$1/files"}
    case $_rec in
      *.orig) _path=\${_path%.orig}; rm -f "$_path"; cp -pP "$_rec" "$_path" ;;
      *.absent) rm -f "\${_path%.absent}" ;;
    esac
    rm -f "$_rec"
  done
  find "$1/files" -depth -type d -exec rmdir {} + 2>/dev/null || true
}`;
    const codes: Record<string, number> = {};
    for (const c of [...cmds].reverse()) {
      const script = c.delete!.replace(/^file_restore_all\(\) \{\n[\s\S]*?\n\}$/m, () => oldRestore);
      codes[c.name] = (await f.ssh.run(c, script, "delete")).code;
    }
    expect(codes["client-sysctl"]).toBe(0);
    expect(codes["client-services"]).not.toBe(0);
    expect(labSh(client, `stat -c %F ${SYSCTL_CONF}`).trim()).toBe("regular file");
    expect(snapshot(client)).not.toBe(planted);
    labSh(client, `rm -rf ${STATE_DIR} ${LOCK_FILE} /etc/systemd/system/iperf3.service.d/zz-mptcp-pulumi.conf ${SYSCTL_CONF}`);
    unplant(paths);
    expect(snapshot(client)).toBe(before);
  });
});

describe("the lock and the state are root's alone (item 6)", () => {
  const asNobody = (cmd: string) => labExec(client, `setpriv --reuid=65534 --regid=65534 --clear-groups -- ${cmd}`);

  it("a user who is not root can neither hold the lock nor read the state; control: with the old 0644 lock the user blocks an apply", async () => {
    const cmds = await clientCommands();
    await ok(named(cmds, "limits"), "create");
    expect(labSh(client, `stat -c %a ${LOCK_FILE} ${STATE_DIR}`).trim().split("\n")).toEqual(["600", "700"]);
    const held = asNobody(`flock -n ${LOCK_FILE} true`);
    expect(held.code).not.toBe(0);
    expect(held.stderr).toMatch(/Permission denied/);
    expect(asNobody(`cat ${STATE_DIR}/limits/orig`).code).not.toBe(0);
    // control: the lock as old versions made it; the user holds it, and an apply waits
    labSh(client, `chmod 644 ${LOCK_FILE}`);
    labSh(client, `setpriv --reuid=65534 --regid=65534 --clear-groups -- flock -o ${LOCK_FILE} sleep 60 > /dev/null 2>&1 & echo $! > /run/lab-holder.pid`);
    await waitFor("the user to hold the lock", 5000, () => labExec(client, `flock -n ${LOCK_FILE} true`).code !== 0, 50);
    const t0 = performance.now();
    const blocked = startCreate(named(cmds, "limits"));
    let finished = false;
    void blocked.done.then(() => (finished = true));
    await new Promise((r) => setTimeout(r, 3000));
    expect(finished).toBe(false);
    labSh(client, "kill $(cat /run/lab-holder.pid); rm -f /run/lab-holder.pid");
    expect(await blocked.done).toBe(0);
    console.log(`control: the apply waited ${((performance.now() - t0) / 1000).toFixed(1)} s on a user's lock`);
    // that apply made the old lock root's again
    expect(labSh(client, `stat -c %a ${LOCK_FILE}`).trim()).toBe("600");
    await ok(named(cmds, "limits"), "delete");
    expect(snapshot(client)).toBe(before);
  });
});
