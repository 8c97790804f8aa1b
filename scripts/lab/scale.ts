// npm run lab -- bench --scale 2,8,32,64: the same MPTCP setup on N laptops by this project and
// by an Ansible playbook (bench/mptcp.yml), on one lab, in one run. For each N: our full apply
// (the real program under Pulumi's mocks, its commands through the engine harness over real SSH,
// one connection per command as the command provider opens them), a no-op re-apply, destroy;
// then the playbook with Ansible's default forks and with forks=N, each applied and re-applied.
// Reports wall time, SSH connections per laptop (TCP connections each laptop's kernel accepted,
// the same count for both tools) and the ratio; checks that both leave the same MPTCP state and
// that every laptop is back to its state before each tool's turn. Our commands run through the
// engine simulator (test/harness/provider.ts) at the engine's default --parallel (4 x CPUs), and
// it counts what a DIY backend (`pulumi login --local`) writes: the whole state, as JSON, at the
// start and the end of every step. Each such checkpoint is also written to a file in the bench's
// directory (a temporary file renamed over the stack file), so the apply pays for it as the
// engine does; the table gives the writes, the bytes, and the stored state per host.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { runProgram, StackConfig } from "../../test/harness/program";
import { CommandProviderSim, defaultParallel } from "../../test/harness/provider";
import { KEX, sshRunner } from "../../test/harness/ssh";
import { snapshot } from "../../test/harness/labtest";
import { LabHost, LabState, labDown, labExec, labStackConfig, labUp } from "./lab";
import { pairsTopology } from "./topology";
import { preparePlotDir, writeSvg } from "./plot";
import { median, requireRuns } from "./bench";

export const PLAYBOOK = resolve(__dirname, "../../bench/mptcp.yml");
export const DEFAULT_FORKS = "ansible forks=5 (default)";

export interface ScaleOptions {
  sizes: number[];
  /** Rounds per N (each: ours, then Ansible with both fork counts); the summary takes medians. */
  runs: number;
  /** Where to write scale.svg (nothing written when absent). */
  plot?: string;
}

interface Host {
  name: string;
  ssh: { host: string; port: number; user: string; hostKey: string };
  limits: { subflows: number; addAddrAccepted: number };
  endpoints?: { interface: string; address: string; flags: string[] }[];
}

export interface Row {
  n: number;
  /** Which round of this N (1-based). */
  round: number;
  tool: string;
  /** What ran: apply, no-op re-apply, destroy. */
  run: "apply" | "no-op" | "destroy";
  seconds: number;
  /** SSH connections per laptop: min and max over the laptops. */
  connections: [number, number];
  /** Ours only: what the engine simulator did in this run. */
  engine?: EngineFacts;
}

/** What the engine simulator reports for one of our runs (apply, no-op or destroy). */
export interface EngineFacts {
  /** The --parallel it ran with (the engine's default) and the most chains of steps at once. */
  parallel: number;
  peak: number;
  /** Steps that ran a command. */
  steps: number;
  /** The DIY backend's checkpoints: whole-state JSON writes, their bytes, the largest one. */
  writes: number;
  bytes: number;
  largest: number;
  /** Seconds spent making and writing the checkpoints (inside the run's wall time). */
  checkpointSeconds: number;
  /** After the run: the stored state (the checkpoint with nothing pending) and all commands' registered inputs, in bytes. */
  stateBytes: number;
  inputBytes: number;
}

/** The stack config for the first n laptops of a pairs lab (s01/c01 ... ). */
export function scaleConfig(full: ReturnType<typeof labStackConfig>, n: number): StackConfig & { hosts: Host[] } {
  const keep = new Set(pairsTopology(n).hosts.map((h) => h.name));
  return {
    hosts: (full.hosts as Host[]).filter((h) => keep.has(h.name)),
    links: full.links.filter((l) => keep.has(l.client) && keep.has(l.server)),
  };
}

/** Ansible's inventory for the same hosts and values: host variables the playbook reads. */
export function inventory(hosts: Host[], privateKeyFile: string): string {
  const entries = hosts.map((h) => [
    h.name,
    {
      ansible_host: h.ssh.host,
      ansible_port: h.ssh.port,
      ansible_user: h.ssh.user,
      ansible_ssh_private_key_file: privateKeyFile,
      mptcp_subflows: h.limits.subflows,
      mptcp_add_addr_accepted: h.limits.addAddrAccepted,
      mptcp_endpoints: h.endpoints ?? [],
    },
  ]);
  return stringify({ all: { hosts: Object.fromEntries(entries) } });
}

/** TCP connections this laptop's network namespace has accepted so far (Tcp PassiveOpens). */
function passiveOpens(h: LabHost): number {
  const lines = readFileSync(`/proc/${h.pid}/net/snmp`, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("Tcp:"));
  const [names, values] = lines.map((l) => l.trim().split(/\s+/));
  return Number(values[names.indexOf("PassiveOpens")]);
}

/**
 * The engine simulator at the engine's default parallelism, each of its checkpoints also written to
 * `file` (as the DIY backend's file bucket writes a temporary file and renames it over the stack's);
 * `facts` gives what the last up or destroy did.
 */
function engineSim(run: ConstructorParameters<typeof CommandProviderSim>[0], file: string) {
  const sim = new CommandProviderSim(run);
  const parallel = defaultParallel();
  const json = sim.checkpointJson.bind(sim);
  let seconds = 0;
  sim.checkpointJson = () => {
    const t0 = performance.now();
    const text = json();
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
    seconds += (performance.now() - t0) / 1000;
    return text;
  };
  const facts = (steps: number): EngineFacts => {
    const f: EngineFacts = {
      parallel,
      peak: sim.peakParallel,
      steps,
      ...sim.checkpoints,
      checkpointSeconds: seconds,
      stateBytes: Buffer.byteLength(json()),
      inputBytes: [...sim.state.values()].reduce((sum, c) => sum + Buffer.byteLength(JSON.stringify(c.inputs)), 0),
    };
    seconds = 0;
    return f;
  };
  return {
    up: async (commands: Parameters<CommandProviderSim["up"]>[0]) => facts((await sim.up(commands, { parallel })).length),
    destroy: async () => facts((await sim.destroy({ parallel })).length),
  };
}

/** Runs `fn`, timing it and counting the SSH connections each laptop accepted meanwhile. */
async function measured(laptops: LabHost[], fn: () => Promise<void>): Promise<{ seconds: number; connections: [number, number] }> {
  const before = laptops.map(passiveOpens);
  const t0 = performance.now();
  await fn();
  const seconds = (performance.now() - t0) / 1000;
  const per = laptops.map((h, i) => passiveOpens(h) - before[i]);
  return { seconds, connections: [Math.min(...per), Math.max(...per)] };
}

/** What both tools must agree on: net.mptcp.enabled, the limits, the endpoints (without kernel ids). */
function mptcpState(h: LabHost): string {
  return labExec(h, "cat /proc/sys/net/mptcp/enabled; ip mptcp limits show; ip mptcp endpoint show | sed -E 's/ id [0-9]+//'").stdout;
}

function forEachOk(laptops: LabHost[], what: string, check: (h: LabHost) => string | undefined): void {
  const bad = laptops.map((h) => [h.name, check(h)]).filter(([, p]) => p !== undefined);
  if (bad.length)
    throw new Error(
      `${what}: ${bad
        .slice(0, 3)
        .map(([n, p]) => `${n}: ${p}`)
        .join("; ")}${bad.length > 3 ? ` (and ${bad.length - 3} more)` : ""}`,
    );
}

/** One ansible-playbook run; returns its PLAY RECAP per host. Closes its SSH masters after, so each run opens its own. */
async function ansible(dir: string, forks: number | undefined): Promise<Map<string, Record<string, number>>> {
  const cfg = join(dir, "ansible.cfg");
  writeFileSync(
    cfg,
    `[defaults]
inventory = ${join(dir, "inventory.yml")}
${forks === undefined ? "" : `forks = ${forks}\n`}gathering = explicit
interpreter_python = /usr/bin/python3
retry_files_enabled = False
nocolor = True
local_tmp = ${join(dir, "local")}
[ssh_connection]
pipelining = True
control_path_dir = ${join(dir, "cp")}
ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -o KexAlgorithms=${KEX} -o IdentitiesOnly=yes -o GlobalKnownHostsFile=/dev/null -o UserKnownHostsFile=${join(dir, "known_hosts")}
`,
  );
  const env = { ...process.env, ANSIBLE_CONFIG: cfg, ANSIBLE_HOME: join(dir, "home"), ANSIBLE_NOCOLOR: "1" };
  const out = await new Promise<{ code: number; text: string }>((res) => {
    const child = spawn("ansible-playbook", [PLAYBOOK], { env, stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (d) => (text += d));
    child.stderr.on("data", (d) => (text += d));
    child.on("close", (code) => res({ code: code ?? -1, text }));
  });
  // the run's persistent SSH masters: end them, so the next run is measured from cold
  spawnSync("sh", ["-c", `for s in "$1"/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x 2>/dev/null; done; true`, "sh", join(dir, "cp")]);
  if (out.code !== 0) throw new Error(`ansible-playbook failed (exit ${out.code}):\n${out.text.slice(-3000)}`);
  const recap = new Map<string, Record<string, number>>();
  for (const m of out.text.matchAll(/^(\S+)\s+:\s+(.*)$/gm)) {
    recap.set(m[1], Object.fromEntries([...m[2].matchAll(/(\w+)=(\d+)/g)].map((x) => [x[1], Number(x[2])])));
  }
  return recap;
}

/** Puts a laptop back after the playbook (which keeps no originals): its values in `pristine`, the snapshot taken before. */
function undoAnsible(h: LabHost, pristine: string): void {
  const enabled = /^sysctl enabled:(\d+)$/m.exec(pristine);
  const limits = /^limits add_addr_accepted (\d+) subflows (\d+)/m.exec(pristine);
  if (!enabled || !limits) throw new Error(`${h.name}: the snapshot lacks net.mptcp.enabled or the limits`);
  const r = labExec(
    h,
    `rm -f /etc/sysctl.d/90-mptcp-ansible.conf && rm -rf /root/.ansible && sysctl -qw net.mptcp.enabled=${enabled[1]} && ip mptcp endpoint flush && ip mptcp limits set subflows ${limits[2]} add_addr_accepted ${limits[1]}`,
  );
  if (r.code !== 0) throw new Error(`${h.name}: putting back after Ansible: ${r.stderr}`);
}

export async function runScale(opts: ScaleOptions): Promise<Row[]> {
  requireRuns(opts.runs);
  const max = Math.max(...opts.sizes);
  preparePlotDir(opts.plot);
  if (spawnSync("sh", ["-c", "command -v ansible-playbook"], { stdio: "ignore" }).status !== 0) {
    throw new Error("the scale benchmark compares against Ansible: apt-get install -y ansible-core");
  }
  const dir = mkdtempSync(join(tmpdir(), "mptcp-scale-"));
  const t0 = performance.now();
  const lab: LabState = await labUp({ dir: join(dir, "lab"), id: "scale", topology: pairsTopology(max) });
  console.log(`bench --scale: a lab of ${max} laptops up in ${((performance.now() - t0) / 1000).toFixed(1)} s (not counted)`);
  const rows: Row[] = [];
  const report = (r: Row) => {
    rows.push(r);
    const [lo, hi] = r.connections;
    const e = r.engine;
    const engine = e ? `; ${e.steps} steps, at most ${e.peak} at once (--parallel ${e.parallel}), ${e.writes} checkpoints, ${mb(e.bytes)} MB (${e.checkpointSeconds.toFixed(2)} s)` : "";
    console.log(
      `  N=${String(r.n).padStart(3)}${opts.runs > 1 ? ` #${r.round}` : ""}  ${r.tool.padEnd(22)} ${r.run.padEnd(8)} ${r.seconds.toFixed(2).padStart(7)} s   SSH connections per laptop ${lo === hi ? lo : `${lo}-${hi}`}${engine}`,
    );
  };
  try {
    const privateKey = readFileSync(lab.privateKeyFile, "utf8");
    const full = labStackConfig(lab);
    writeFileSync(join(dir, "known_hosts"), readFileSync(lab.knownHostsFile, "utf8"));
    for (const n of opts.sizes) {
      const cfg = scaleConfig(full, n);
      const laptops = cfg.hosts.map((h) => lab.hosts.find((x) => x.name === h.name)!);
      const pristine = new Map(laptops.map((h) => [h.name, snapshot(h)]));
      const asBefore = (what: string) => forEachOk(laptops, `${what}: not as before`, (h) => (snapshot(h) === pristine.get(h.name) ? undefined : "state differs"));

      writeFileSync(join(dir, "inventory.yml"), inventory(cfg.hosts, lab.privateKeyFile));
      // rounds alternate the tools, so a slow moment of the machine falls on either
      for (let round = 1; round <= opts.runs; round++) {
        // this project: the program, then its commands through the engine harness
        const ssh = sshRunner();
        const sim = engineSim(ssh.run, join(dir, "stack.json"));
        let engine: EngineFacts | undefined;
        const up = await measured(laptops, async () => {
          const program = await runProgram(cfg, { privateKey });
          engine = await sim.up(program.commands);
        });
        report({ n, round, tool: "mptcp-pulumi", run: "apply", ...up, engine });
        const wanted = new Map(laptops.map((h) => [h.name, mptcpState(h)]));
        const noop = await measured(laptops, async () => {
          engine = await sim.up((await runProgram(cfg, { privateKey })).commands);
        });
        if (engine!.steps !== 0) throw new Error(`N=${n}: the re-apply ran ${engine!.steps} commands (0 expected)`);
        report({ n, round, tool: "mptcp-pulumi", run: "no-op", ...noop, engine });
        const destroyed = await measured(laptops, async () => {
          engine = await sim.destroy();
        });
        report({ n, round, tool: "mptcp-pulumi", run: "destroy", ...destroyed, engine });
        ssh.close();
        asBefore(`N=${n}: after destroy`);

        // Ansible, default forks (5) and forks = N
        for (const forks of [undefined, n]) {
          const tool = forks === undefined ? DEFAULT_FORKS : `ansible forks=${forks}`;
          let recap = new Map<string, Record<string, number>>();
          const play = () =>
            measured(laptops, async () => {
              recap = await ansible(dir, forks);
            });
          report({ n, round, tool, run: "apply", ...(await play()) });
          forEachOk(laptops, `N=${n}: ${tool} left a different MPTCP state than mptcp-pulumi`, (h) => (mptcpState(h) === wanted.get(h.name) ? undefined : mptcpState(h).replace(/\n/g, " | ")));
          forEachOk(laptops, `N=${n}: ${tool} apply`, (h) => (recap.get(h.name)?.failed === 0 && recap.get(h.name)?.unreachable === 0 ? undefined : JSON.stringify(recap.get(h.name))));
          report({ n, round, tool, run: "no-op", ...(await play()) });
          forEachOk(laptops, `N=${n}: ${tool} re-apply changed something`, (h) => (recap.get(h.name)?.changed === 0 ? undefined : JSON.stringify(recap.get(h.name))));
          for (const h of laptops) undoAnsible(h, pristine.get(h.name)!);
          asBefore(`N=${n}: after putting back what ${tool} did`);
        }
      }
    }
  } finally {
    await labDown(lab.dir, lab.id);
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\n${scaleSummary(rows, opts.runs).join("\n")}`);
  if (opts.plot) await plotScale(join(opts.plot, "scale.svg"), rows);
  return rows;
}

/** The rows of one N, tool and run, one per round. */
const rowsOf = (rows: Row[], n: number, tool: string, run: Row["run"]) => rows.filter((r) => r.n === n && r.tool === tool && r.run === run);
const medianOf = (rs: Row[]) => median(rs.map((r) => r.seconds));
const span = (xs: number[], digits: number) => {
  const [lo, hi] = [Math.min(...xs).toFixed(digits), Math.max(...xs).toFixed(digits)];
  return lo === hi ? lo : `${lo}-${hi}`;
};

const mb = (bytes: number) => (bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 1);
const kb = (bytes: number) => (bytes / 1e3).toFixed(1);

/**
 * The summary the bench prints: per N, the medians of the rounds (wall seconds, ours and Ansible's,
 * and the ratio); what the engine simulator did (parallelism, the DIY backend's checkpoints, the
 * state stored per host); each round's own ratio when there are several.
 */
export function scaleSummary(rows: Row[], runs: number): string[] {
  const out: string[] = [];
  const at = (n: number, tool: string, run: Row["run"]) => medianOf(rowsOf(rows, n, tool, run));
  const conn = (n: number, tool: string) => {
    const rs = rowsOf(rows, n, tool, "apply");
    const [lo, hi] = [Math.min(...rs.map((r) => r.connections[0])), Math.max(...rs.map((r) => r.connections[1]))];
    return lo === hi ? `${lo}` : `${lo}-${hi}`;
  };
  const sizes = [...new Set(rows.map((r) => r.n))];
  out.push(`${runs > 1 ? `Medians of ${runs} rounds per N (wall seconds):` : "Wall seconds:"}`);
  out.push("  N   ours apply  no-op  destroy   ansible(5)  ansible(N)  ansible no-op(5/N)   SSH/laptop ours  ansible   ansible(best) / ours");
  for (const n of sizes) {
    const ours = at(n, "mptcp-pulumi", "apply");
    const a5 = at(n, DEFAULT_FORKS, "apply");
    const aN = at(n, `ansible forks=${n}`, "apply");
    out.push(
      `${String(n).padStart(3)}  ${ours.toFixed(2).padStart(9)} ${at(n, "mptcp-pulumi", "no-op").toFixed(2).padStart(6)} ${at(n, "mptcp-pulumi", "destroy").toFixed(2).padStart(8)}  ${a5.toFixed(2).padStart(10)}  ${aN.toFixed(2).padStart(10)}  ${`${at(n, DEFAULT_FORKS, "no-op").toFixed(1)}/${at(n, `ansible forks=${n}`, "no-op").toFixed(1)}`.padEnd(18)}  ${conn(n, "mptcp-pulumi").padStart(15)}  ${conn(n, DEFAULT_FORKS).padStart(7)}   ${(Math.min(a5, aN) / ours).toFixed(1)}x`,
    );
  }
  // the engine's side of our runs: the same in every round but the peak and the seconds
  const engine = (n: number, run: Row["run"]) => rowsOf(rows, n, "mptcp-pulumi", run).flatMap((r) => (r.engine ? [r.engine] : []));
  const parallel = [...new Set(sizes.flatMap((n) => engine(n, "apply").map((e) => e.parallel)))];
  if (parallel.length) {
    out.push(
      `Our runs in the engine simulator (--parallel ${parallel.join("/")}, the engine's default: 4 x CPUs) and a DIY backend's checkpoints (whole state, JSON, at the start and end of every step):`,
    );
    out.push("  N  steps apply/destroy  peak parallel apply/destroy  checkpoints apply/no-op/destroy  MB written apply/destroy  largest MB  checkpoint s (apply)  state KB/host  inputs KB/host");
    for (const n of sizes) {
      const [a, o, d] = (["apply", "no-op", "destroy"] as const).map((run) => engine(n, run));
      if (!a.length) continue;
      const med = (es: EngineFacts[], f: (e: EngineFacts) => number) => median(es.map(f));
      const peak = (es: EngineFacts[]) => Math.max(...es.map((e) => e.peak));
      out.push(
        `${String(n).padStart(3)}  ${`${med(a, (e) => e.steps)}/${med(d, (e) => e.steps)}`.padStart(19)}  ${`${peak(a)}/${peak(d)}`.padStart(27)}  ${`${med(a, (e) => e.writes)}/${med(o, (e) => e.writes)}/${med(d, (e) => e.writes)}`.padStart(31)}  ${`${mb(med(a, (e) => e.bytes))}/${mb(med(d, (e) => e.bytes))}`.padStart(24)}  ${mb(med(a, (e) => e.largest)).padStart(10)}  ${med(
          a,
          (e) => e.checkpointSeconds,
        )
          .toFixed(2)
          .padStart(20)}  ${kb(med(a, (e) => e.stateBytes) / n).padStart(13)}  ${kb(med(a, (e) => e.inputBytes) / n).padStart(14)}`,
      );
    }
  }
  if (runs === 1) return out;
  out.push("Per round (each round's own best Ansible against its own apply):");
  for (const n of sizes) {
    const ours = rowsOf(rows, n, "mptcp-pulumi", "apply");
    const best = ours.map((o) => Math.min(...rows.filter((r) => r.n === n && r.round === o.round && r.tool.startsWith("ansible") && r.run === "apply").map((r) => r.seconds)));
    out.push(
      `${String(n).padStart(3)}  ours ${span(
        ours.map((o) => o.seconds),
        2,
      )} s, Ansible's best ${span(best, 2)} s, ratio ${span(
        best.map((b, i) => b / ours[i].seconds),
        1,
      )}x`,
    );
  }
  return out;
}

/** Wall time against N for each tool's apply and no-op re-apply. */
export async function plotScale(file: string, rows: Row[]): Promise<void> {
  // one point per N and series: the median of its rounds
  const rounds = Math.max(...rows.map((r) => r.round));
  const first = rows.filter((r) => r.run !== "destroy" && r.round === 1);
  const values = first.map((r) => ({
    n: r.n,
    seconds: medianOf(rowsOf(rows, r.n, r.tool, r.run)),
    series: `${r.tool.replace(/ \(default\)/, "").replace(/forks=\d+$/, (f) => (f === "forks=5" ? f : "forks=N"))} ${r.run}`,
  }));
  await writeSvg(file, {
    title: `The same MPTCP setup on N lab laptops: wall time (2-core machine${rounds > 1 ? `, medians of ${rounds} rounds` : ""})`,
    width: 560,
    height: 300,
    data: { values },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "n", type: "quantitative", title: "laptops (N)", scale: { type: "log", base: 2 }, axis: { values: [...new Set(values.map((v) => v.n))] } },
      y: { field: "seconds", type: "quantitative", title: "wall seconds" },
      color: { field: "series", type: "nominal", title: "tool, run", legend: { labelLimit: 400 } },
    },
  });
}
