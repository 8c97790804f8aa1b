// TEST CODE. A lab for one test file: laptops up, the provider simulator over real SSH, and the
// lab's private key as the stack's mptcp:sshPrivateKey. A test file takes its lab with labFile
// (hooks included); startLab and stopLab are the two halves for a file that needs them apart.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { LabHost, LabState, labDown, labUp } from "../../scripts/lab/lab";
import { Topology } from "../../scripts/lab/topology";
import { CommandProviderSim } from "./provider";
import { ProviderTimings, sshRunner, SshRunner } from "./ssh";

export interface LabFixture {
  lab: LabState;
  ssh: SshRunner;
  sim: CommandProviderSim;
  privateKey: string;
}

/** Every lab this test file started, finished booting or not: stopLab takes them all down. */
const started: { dir: string; id: string }[] = [];

/**
 * `prefix` + a random suffix names the lab and the lab claims free management slots, so suites
 * running at once never collide; MPTCP_LAB_ID, MPTCP_LAB_SLOT and MPTCP_LAB_DIR override them.
 * Commands run over one kept SSH connection per host (`reuseSsh`, SshRunnerOptions.reuse) unless
 * the file's subject is what the provider's connection per command does (a cut connection).
 * `sshTimings` shortens the provider's dial retries and keepalive (test/harness/ssh.ts
 * ProviderTimings; real by default): for a file that probes a cut path and needs a quick answer.
 */
export async function startLab(topology: Topology, prefix: string, opts: { reuseSsh?: boolean; sshTimings?: Partial<ProviderTimings> } = {}): Promise<LabFixture> {
  const id = process.env.MPTCP_LAB_ID ?? `${prefix}${Math.random().toString(16).slice(2, 6)}`;
  const slot = process.env.MPTCP_LAB_SLOT === undefined ? undefined : Number(process.env.MPTCP_LAB_SLOT);
  const dir = process.env.MPTCP_LAB_DIR ?? mkdtempSync(join(tmpdir(), `mptcp-lab-${id}-`));
  started.push({ dir, id });
  const t0 = performance.now();
  const lab = await labUp({ dir, id, slot, topology });
  console.log(`lab ${id} up in ${(performance.now() - t0).toFixed(0)} ms (${lab.hosts.length} laptops, ${topology.paths.length} paths)`);
  // the provider's real dial retries and keepalive unless the file shortens them, and says why
  const ssh = sshRunner({ reuse: opts.reuseSsh ?? true, timings: opts.sshTimings });
  return { lab, ssh, sim: new CommandProviderSim(ssh.run), privateKey: readFileSync(lab.privateKeyFile, "utf8") };
}

/** Takes down every lab this file started, including one whose start timed out in a hook. */
export async function stopLab(f: Partial<LabFixture>): Promise<void> {
  f.ssh?.close();
  for (const { dir, id } of started.splice(0)) await labDown(dir, id);
}

/** A test file's lab (labFile): its fields are readable in tests and in hooks registered after labFile. */
export interface LabFile extends Readonly<LabFixture> {
  /** The laptop named `name`. */
  host(name: string): LabHost;
}

/**
 * The lab of a test file, or of a group in it: registers a beforeAll that starts it (startLab:
 * `topology`, `prefix`, `opts`) and an afterAll that takes it down (stopLab). Call it where the
 * file's own hooks go: a beforeAll registered after it runs on the lab that is up, and an
 * afterAll registered after it runs before the lab goes down (vitest runs afterAll hooks in
 * reverse order).
 */
export function labFile(topology: Topology, prefix: string, opts: { reuseSsh?: boolean; sshTimings?: Partial<ProviderTimings> } = {}): LabFile {
  let fixture: LabFixture | undefined;
  beforeAll(async () => {
    fixture = await startLab(topology, prefix, opts);
  });
  afterAll(() => stopLab({ ssh: fixture?.ssh }));
  const up = (): LabFixture => {
    if (!fixture) throw new Error(`the lab ${prefix} is not up: use it in a test, or in a hook registered after labFile`);
    return fixture;
  };
  return {
    get lab() {
      return up().lab;
    },
    get ssh() {
      return up().ssh;
    },
    get sim() {
      return up().sim;
    },
    get privateKey() {
      return up().privateKey;
    },
    host(name: string): LabHost {
      const h = up().lab.hosts.find((x) => x.name === name);
      if (!h)
        throw new Error(
          `the lab ${prefix} has no laptop ${name} (it has ${up()
            .lab.hosts.map((x) => x.name)
            .join(", ")})`,
        );
      return h;
    },
  };
}
