// npm run lab -- up [--topology FILE] | down | status | bench [--rate 20mbit] [--runs 5] [--seconds 5] [--unequal 5mbit,40mbit] [--cc reno] [--plot DIR] | bench --scale 2,8,32,64 [--runs 3] [--plot DIR]
// The lab: test laptops as network namespaces on this machine (root required). See README.
import { join, resolve } from "node:path";
import { parseArgs, ParseArgsConfig } from "node:util";
import { labDown, labIsUp, labStatus, labUp, readLabState, removeStackFile, requireRoot, writeStackFile } from "./lab/lab";
import { DEFAULT_TOPOLOGY, isPairsCount, MAX_HOSTS, readTopology } from "./lab/topology";
import { requireRuns, runBench } from "./lab/bench";
import { preparePlotDir } from "./lab/plot";
import { CliExit, CliIo, processIo, runCli, usageExit } from "./cli-io";

const root = resolve(__dirname, "..");

const USAGE =
  "npm run lab -- up [--topology FILE] | down | status | bench [--rate 20mbit] [--runs 5] [--seconds 5] [--unequal 5mbit,40mbit] [--cc reno] [--plot DIR] | bench --scale 2,8,32,64 [--runs 3] [--plot DIR]";

/** lab's exit code for every failure, usage errors included. */
const FAILED = 1;

const string = { type: "string" } as const;

/** The options each command takes (node:util parseArgs, as verify and check parse theirs); --help goes with any. */
const OPTIONS = {
  up: { topology: string },
  down: {},
  status: {},
  bench: { scale: string, plot: string, runs: string, rate: string, seconds: string, unequal: string, cc: string },
} satisfies Record<string, NonNullable<ParseArgsConfig["options"]>>;

type Command = keyof typeof OPTIONS;

/** A command with the values of its options. */
type Parsed = { [C in Command]: { cmd: C; values: Partial<Record<keyof (typeof OPTIONS)[C], string>> } }[Command];

/** The options of bench that --scale leaves out. */
const NOT_WITH_SCALE = ["rate", "seconds", "unequal", "cc"] as const;

/** `argv` parsed for its command: the command and its option values; a usage error (exit 1) for an unknown command, option or argument, or a missing value; --help prints the usage and exits 0. */
function parseLabArgs(argv: string[], io: CliIo): Parsed {
  const [cmd, ...args] = argv;
  if (cmd === "--help") {
    io.out(`usage: ${USAGE}`);
    throw new CliExit(0);
  }
  if (!Object.hasOwn(OPTIONS, cmd ?? "")) usageExit(io, USAGE, cmd === undefined ? undefined : `unknown command ${cmd}`, FAILED);
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { ...OPTIONS[cmd as Command], help: { type: "boolean" } } });
  } catch (e) {
    usageExit(io, USAGE, (e as Error).message, FAILED);
  }
  if (parsed.values.help) {
    io.out(`usage: ${USAGE}`);
    throw new CliExit(0);
  }
  if (parsed.positionals.length) usageExit(io, USAGE, `unknown arguments: ${parsed.positionals.join(" ")}`, FAILED);
  const { help: _help, ...values } = parsed.values;
  return { cmd, values } as Parsed;
}

/**
 * npm run lab with these arguments and environment; throws on an error (the entry point prints it
 * as "lab: message" and exits 1). Tests run it in process too.
 */
export async function labMain(argv: string[], env: NodeJS.ProcessEnv = process.env, io: CliIo = processIo): Promise<void> {
  // Overrides (used by the tests so they never touch a developer's own lab).
  const dir = env.MPTCP_LAB_DIR ?? join(root, ".lab");
  const stackFile = env.MPTCP_LAB_STACK_FILE ?? join(root, "Pulumi.lab.yaml");
  const ID = env.MPTCP_LAB_ID ?? "lab";
  const SLOT = env.MPTCP_LAB_SLOT === undefined ? undefined : Number(env.MPTCP_LAB_SLOT);
  if (!/^[a-z0-9]{1,8}$/.test(ID)) throw new Error("MPTCP_LAB_ID must be 1 to 8 lowercase letters or digits");
  if (SLOT !== undefined && (!Number.isInteger(SLOT) || SLOT < 0 || SLOT > 7)) throw new Error("MPTCP_LAB_SLOT must be a whole number 0..7 (or unset: the first free slots)");
  const parsed = parseLabArgs(argv, io);
  switch (parsed.cmd) {
    case "up": {
      const file = parsed.values.topology;
      requireRoot();
      const topology = file ? readTopology(file) : DEFAULT_TOPOLOGY;
      const t0 = performance.now();
      const wasUp = labIsUp(dir, topology);
      const state = await labUp({ dir, id: ID, slot: SLOT, topology, progress: (m) => io.out(`  ${m}`) });
      writeStackFile(state, stackFile);
      io.out(wasUp ? "lab already up" : `lab up in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
      io.out(labStatus(dir));
      io.out(`stack file: ${stackFile} (pulumi up -s lab; see README)`);
      return;
    }
    case "down": {
      const t0 = performance.now();
      const state = readLabState(dir);
      await labDown(dir, ID);
      removeStackFile(stackFile, state);
      io.out(`lab down in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
      return;
    }
    case "status":
      io.out(labStatus(dir));
      return;
    case "bench": {
      const opts = parsed.values;
      const { scale, plot } = opts;
      if (scale !== undefined) {
        const runs = Number(opts.runs ?? "3");
        const others = NOT_WITH_SCALE.filter((k) => opts[k] !== undefined);
        if (others.length) usageExit(io, USAGE, `unknown arguments: ${others.map((k) => `--${k} ${opts[k]}`).join(" ")} (--scale takes only --runs and --plot)`, FAILED);
        const sizes = scale.split(",").map(Number);
        if (!sizes.every(isPairsCount)) throw new Error(`--scale takes even laptop counts from 2 to ${MAX_HOSTS}, comma-separated (got ${scale})`);
        requireRuns(runs);
        requireRoot();
        // a --plot directory that cannot be written is refused before anything is built or loaded
        if (plot) preparePlotDir(plot);
        // loaded here only: it runs the Pulumi program, and Pulumi takes about a second to load
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { runScale } = require("./lab/scale") as typeof import("./lab/scale");
        await runScale({ sizes, runs, ...(plot ? { plot } : {}) });
        return;
      }
      const rate = opts.rate ?? "20mbit";
      const runs = Number(opts.runs ?? "5");
      const seconds = Number(opts.seconds ?? "5");
      const unequal = (opts.unequal ?? "5mbit,40mbit").split(",");
      if (unequal.length !== 2) throw new Error("--unequal takes two rates, lan's and wlan's: 5mbit,40mbit");
      const { cc } = opts;
      await runBench({ rate, runs, seconds, unequal: unequal as [string, string], ...(plot ? { plot } : {}), ...(cc ? { cc } : {}) });
      return;
    }
    default: {
      const never: never = parsed;
      throw new Error(`unhandled command ${JSON.stringify(never)}`);
    }
  }
}

if (require.main === module) {
  void runCli("lab", (argv, io) => labMain(argv, process.env, io).then(() => 0), process.argv.slice(2), processIo, FAILED).then((code) => {
    if (code !== 0) process.exit(code);
  });
}
