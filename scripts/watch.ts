// npm run watch -- Pulumi.<stack>.yaml [--identity KEY] [--interval S] [--json] [--plot FILE.svg]
// A live view of every host of a stack: per host and interface (those with an MPTCP endpoint or
// carrying a subflow) the receive and send rate, MPTCP connections and subflows, backup or not;
// below it the MPTCP events of all hosts as they come (ip mptcp monitor, MPTcpExt counters). One
// SSH connection per host, read-only; what it runs there ends with its channel (Ctrl-C, the
// watcher killed, the connection lost). --json: one object per interval instead of the view.
// --plot: an SVG of each path's rates over the session, written on exit. Exits 0 on Ctrl-C
// (SIGINT or SIGTERM), 2 on usage errors or when every host is unreachable or lost.
import { accessSync, constants } from "node:fs";
import { dirname } from "node:path";
import { ClientChannel } from "ssh2";
import { CliIo, exitWith, usageExit } from "./cli-io";
import { writeSvg } from "./lab/plot";
import { closeAll, COMMON_HELP, startCli } from "./verify/cli";
import { Session } from "./verify/ssh";
import {
  counterEvents,
  describeEvent,
  HostView,
  hostRates,
  InterfaceRates,
  intervalText,
  MONITOR_COMMAND,
  parseMonitorLine,
  parseSample,
  renderFrame,
  Sample,
  samplerCommand,
  ViewEvent,
} from "./watch/watch";

const USAGE = "npm run watch -- Pulumi.<stack>.yaml [--identity KEY] [--interval S] [--json] [--plot FILE.svg] [--timeout SECONDS] [--connections N]";
const HELP = [
  ...COMMON_HELP.map((l) => (l.startsWith("  --json") ? "  --json             one JSON object per interval on stdout (no view)" : l)),
  "  --interval S       seconds between samples (default 1, from 0.2 to 3600)",
  "  --plot FILE.svg    on exit, write each path's receive and send rate over the session as an SVG",
  "Ctrl-C ends it; nothing it started keeps running on the hosts. Exit codes: 0 ended by Ctrl-C; 2 a usage error, or no host could be reached",
];

/** One host's state in the watcher. */
interface Watched {
  name: string;
  session?: Session;
  channels: ClientChannel[];
  prev?: Sample;
  cur?: Sample;
  rows: Record<string, InterfaceRates>;
  /** Interfaces shown once: they stay. */
  seen: Set<string>;
  status?: string;
  monitor?: string;
  /** Events since the last JSON object. */
  fresh: ViewEvent[];
  /** Samples received, and how many the last tick had seen: a tick without a new sample plots nothing for the host. */
  samples: number;
  ticked: number;
  /** The sampler ended (its command, not necessarily the connection). */
  ended?: boolean;
}

/** A stream cut at `sep`: calls `on` with each complete piece, as it completes (lines: "\n"; the sampler's blocks: "\n@end\n"). */
function pieces(sep: string, on: (text: string) => void): (d: Buffer) => void {
  let buf = "";
  return (d) => {
    buf += d.toString();
    for (let end = buf.indexOf(sep); end >= 0; end = buf.indexOf(sep)) {
      on(buf.slice(0, end));
      buf = buf.slice(end + sep.length);
    }
  };
}

/** npm run watch with these arguments: its exit code (when ended by a signal, or every host gone). */
export async function watchMain(argv: string[], io: CliIo, opts: { write?: (s: string) => void; rows?: () => number } = {}): Promise<number> {
  const run = await startCli(USAGE, argv, io, { interval: { type: "string" }, plot: { type: "string" } }, { help: HELP });
  const interval = run.values.interval === undefined ? 1 : Number(run.values.interval);
  try {
    intervalText(interval);
  } catch {
    closeAll(run);
    usageExit(io, USAGE, "--interval must be a number of seconds from 0.2 to 3600");
  }
  const plot = run.values.plot as string | undefined;
  if (plot !== undefined) {
    try {
      if (!plot.endsWith(".svg")) throw new Error("the file name must end in .svg");
      accessSync(dirname(plot), constants.W_OK);
    } catch (e) {
      closeAll(run);
      usageExit(io, USAGE, `--plot ${plot}: cannot be written: ${(e as Error).message}`);
    }
  }
  if (run.sessions.size === 0) {
    for (const msg of run.unreachable.values()) io.err(`unreachable: ${msg}`);
    closeAll(run);
    return 2;
  }
  const tty = !run.json && opts.write === undefined && process.stdout.isTTY;
  const write = opts.write ?? ((s: string) => void process.stdout.write(s));
  const events: ViewEvent[] = [];
  const hosts: Watched[] = run.model.hosts.map((h) => ({ name: h.name, session: run.sessions.get(h.name), channels: [], rows: {}, seen: new Set(), fresh: [], samples: 0, ticked: 0 }));
  const series: { t: number; path: string; direction: string; mbit: number }[] = [];
  const t0 = Date.now();
  const event = (h: Watched, text: string) => {
    const e = { time: Date.now(), host: h.name, text };
    events.push(e);
    if (events.length > 1000) events.splice(0, events.length - 1000);
    h.fresh.push(e);
  };
  for (const h of hosts) if (!h.session) h.status = `unreachable: ${run.unreachable.get(h.name) ?? "no session"}`;
  let stopping = false;
  // per host: the sampler and the monitor, two channels of its one connection
  await Promise.all(
    hosts.map(async (h) => {
      const s = h.session;
      if (!s) return;
      // silent a whole interval at most between samples; the monitor may be silent for hours
      const silence = { silence: Math.max(60, interval * 4) };
      try {
        const sampler = await s.start(samplerCommand(interval), silence);
        h.channels.push(sampler);
        let err = "";
        sampler.stderr.on("data", (d: Buffer) => (err += d));
        sampler.on(
          "data",
          pieces("\n@end\n", (text) => {
            const sample = parseSample(text);
            if (!sample) return;
            h.prev = h.cur;
            h.cur = sample;
            h.rows = hostRates(h.prev, sample, h.seen, s.host.ssh.host);
            h.samples++;
            for (const k of Object.keys(h.rows)) h.seen.add(k);
            if (h.prev) for (const c of counterEvents(h.prev.counters, sample.counters)) event(h, `counter ${c.counter} +${c.delta}: ${c.meaning}`);
            h.status = undefined;
          }),
        );
        sampler.on("close", () => {
          h.ended = true;
          if (stopping) return;
          // a lost host shows no rates, rather than its last ones
          h.rows = {};
          h.status = s.lost ? `connection lost: ${s.lost}` : `the sampler ended: ${err.trim() || "no reason given"}`;
        });
        h.status = "waiting for the first sample";
      } catch (e) {
        h.status = `cannot start: ${(e as Error).message}`;
        return;
      }
      try {
        // no silence deadline of its own: the sampler's stands for the connection
        const mon = await s.start(MONITOR_COMMAND, { silence: 86400 * 24 });
        h.channels.push(mon);
        const out: string[] = [];
        mon.on(
          "data",
          pieces("\n", (line) => {
            const ev = parseMonitorLine(line);
            if (ev) return event(h, describeEvent(ev, h.cur?.addrs));
            const exit = /^@monitor-exit (\d+)(.*)$/.exec(line);
            if (exit) {
              if (stopping) return;
              const why = (exit[2].trim() || out.join(" ").trim() || `exit ${exit[1]}`).slice(0, 160);
              h.monitor = `ip mptcp monitor is not available (${why}): no subflow or address events from this host, counters and rates only`;
              event(h, h.monitor);
            } else if (line.trim()) out.push(line.trim());
          }),
        );
      } catch (e) {
        h.monitor = `ip mptcp monitor could not be started (${(e as Error).message}): counters and rates only`;
      }
    }),
  );

  const title = () => `npm run watch  ${run.file}  every ${intervalText(interval)} s  ${new Date().toLocaleTimeString("en-GB")}  (Ctrl-C to stop)`;
  const views = (): HostView[] => hosts.map((h) => ({ name: h.name, rows: h.rows, ...(h.status ? { status: h.status } : {}), ...(h.monitor ? { monitor: h.monitor } : {}) }));
  const tick = () => {
    const now = Date.now();
    for (const h of hosts) {
      // only a new sample's rates go into the plot (the timer and the samples are not in step)
      const fresh = h.samples !== h.ticked;
      h.ticked = h.samples;
      if (!fresh) continue;
      for (const [iface, r] of Object.entries(h.rows)) {
        if (r.rx !== null) series.push({ t: (now - t0) / 1000, path: `${h.name} ${iface}`, direction: "receive", mbit: (r.rx * 8) / 1e6 });
        if (r.tx !== null) series.push({ t: (now - t0) / 1000, path: `${h.name} ${iface}`, direction: "send", mbit: (r.tx * 8) / 1e6 });
      }
    }
    if (run.json) {
      io.out(
        JSON.stringify({
          time: new Date(now).toISOString(),
          hosts: Object.fromEntries(
            hosts.map((h) => [
              h.name,
              {
                ...(h.status ? { status: h.status } : {}),
                ...(h.monitor ? { monitor: h.monitor } : {}),
                ...(h.cur ? { uptime: h.cur.uptime, seconds: h.prev ? Math.round((h.cur.uptime - h.prev.uptime) * 1000) / 1000 : null } : {}),
                interfaces: Object.fromEntries(
                  Object.entries(h.rows).map(([k, r]) => [
                    k,
                    { ...r, rx: r.rx === null ? null : Math.round(r.rx), tx: r.tx === null ? null : Math.round(r.tx), rxBytes: h.cur?.rx[k] ?? null, txBytes: h.cur?.tx[k] ?? null },
                  ]),
                ),
                events: h.fresh.splice(0).map((e) => ({ time: new Date(e.time).toISOString(), text: e.text })),
              },
            ]),
          ),
        }),
      );
      return;
    }
    const frame = renderFrame(title(), views(), events, opts.rows?.() ?? (tty ? process.stdout.rows : 50) ?? 50);
    // cursor home, each line cleared to its end, the rest of the screen cleared: no flicker
    if (tty) write(`\x1b[H${frame.map((l) => `${l}\x1b[K`).join("\n")}\n\x1b[J`);
    else write(`${frame.join("\n")}\n\n`);
  };
  if (tty) write("\x1b[?25l\x1b[2J");
  const timer = setInterval(tick, interval * 1000);
  let allGone: () => void = () => undefined;
  const gone = new Promise<void>((resolve) => (allGone = resolve));
  const poll = setInterval(() => {
    if (hosts.every((h) => !h.session || h.session.lost || h.ended)) allGone();
  }, 500);
  const signalled = new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
    // the terminal closed (a tmux pane, an SSH login): end as on Ctrl-C, and write nowhere
    process.once("SIGHUP", () => {
      process.stdout.on("error", () => undefined);
      resolve();
    });
  });
  const why = await Promise.race([signalled.then(() => "signal"), gone.then(() => "gone")]);
  stopping = true;
  clearInterval(timer);
  clearInterval(poll);
  // the channels' stdin closed: what runs on the hosts ends (see watch/watch.ts, onChannelEnd)
  for (const h of hosts) for (const ch of h.channels) ch.end();
  await Promise.all(hosts.map((h) => h.session?.close()));
  if (tty) write("\x1b[?25h");
  // the last partial interval too (its events would be lost otherwise)
  tick();
  if (plot !== undefined) {
    await writeSvg(plot, {
      title: `npm run watch ${run.file}: rate per path`,
      width: 720,
      height: 320,
      data: { values: series },
      mark: { type: "line", interpolate: "step-before" },
      encoding: {
        x: { field: "t", type: "quantitative", title: "seconds" },
        y: { field: "mbit", type: "quantitative", title: "Mbit/s" },
        color: { field: "path", type: "nominal", title: "host interface" },
        strokeDash: { field: "direction", type: "nominal" },
      },
    });
  }
  if (why === "gone") {
    io.err("watch: every host is unreachable or its connection was lost");
    return 2;
  }
  return 0;
}

if (require.main === module) exitWith("watch", watchMain);
