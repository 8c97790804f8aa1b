// npm run lab -- up [--topology FILE] | down | status | bench [--rate 20mbit] [--runs 5] [--seconds 5] [--unequal 5mbit,40mbit] [--cc reno] [--plot DIR] | bench --scale 2,8,32,64 [--runs 3] [--plot DIR]
// The lab: test laptops as network namespaces on this machine (root required). See README.
import { join, resolve } from "node:path";
import { labDown, labIsUp, labStatus, labUp, readLabState, removeStackFile, requireRoot, writeStackFile } from "./lab/lab";
import { DEFAULT_TOPOLOGY, isPairsCount, MAX_HOSTS, readTopology } from "./lab/topology";
import { requireRuns, runBench } from "./lab/bench";
import { preparePlotDir } from "./lab/plot";
import { CliIo, processIo, runCli } from "./cli-io";

const root = resolve(__dirname, "..");

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (!v || v.startsWith("--")) throw new Error(`${name} needs a value`);
  args.splice(i, 2);
  return v;
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
  const [cmd, ...args] = argv;
  switch (cmd) {
    case "up": {
      const file = flag(args, "--topology");
      if (args.length) throw new Error(`unknown arguments: ${args.join(" ")}`);
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
      const scale = flag(args, "--scale");
      if (scale !== undefined) {
        const plot = flag(args, "--plot");
        const runs = Number(flag(args, "--runs") ?? "3");
        if (args.length) throw new Error(`unknown arguments: ${args.join(" ")} (--scale takes only --runs and --plot)`);
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
      const rate = flag(args, "--rate") ?? "20mbit";
      const runs = Number(flag(args, "--runs") ?? "5");
      const seconds = Number(flag(args, "--seconds") ?? "5");
      const unequal = (flag(args, "--unequal") ?? "5mbit,40mbit").split(",");
      if (unequal.length !== 2) throw new Error("--unequal takes two rates, lan's and wlan's: 5mbit,40mbit");
      const plot = flag(args, "--plot");
      const cc = flag(args, "--cc");
      if (args.length) throw new Error(`unknown arguments: ${args.join(" ")}`);
      await runBench({ rate, runs, seconds, unequal: unequal as [string, string], ...(plot ? { plot } : {}), ...(cc ? { cc } : {}) });
      return;
    }
    default:
      throw new Error("usage: npm run lab -- up [--topology FILE] | down | status | bench [--rate 20mbit] [--runs 5] [--seconds 5] [--unequal 5mbit,40mbit] [--cc reno] [--plot DIR] | bench --scale 2,8,32,64 [--runs 3] [--plot DIR]");
  }
}

if (require.main === module) {
  runCli("lab", (argv, io) => labMain(argv, process.env, io).then(() => 0), process.argv.slice(2), processIo, 1).then((code) => {
    if (code !== 0) process.exit(code);
  });
}
