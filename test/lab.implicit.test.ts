// Implicit endpoints: when a join uses a local address that has no endpoint, the kernel (6.18)
// keeps an "implicit" endpoint for it, and then refuses `ip mptcp endpoint add ADDRESS id N ...`
// (-22) for that address. A real one is made on the client laptop: its wlan endpoint is removed
// (the hook's `down`, as after an ifdown), the server announces its wlan address, and the client's
// join to it leaves from wlan's address. Then the hook's `up` and an endpoints apply still succeed
// and the endpoint on that address is ours again (our id, our flags). Negative controls: the add
// the old code ran is refused, and the installed entry point without the replacement fails.
import { beforeAll, describe, expect, it } from "vitest";
import { buildModel, configSchema, SYNC_PATH } from "../components";
import { dialAddress, labExec, labSh, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";
import { waitFor } from "../scripts/lab/wait";
import { labFile } from "./harness/fixture";
import { runProgram, StackConfig } from "./harness/program";
import { endpoints, snapshot } from "./harness/labtest";

const f = labFile(DEFAULT_TOPOLOGY, "i");
let config: StackConfig;
const pre = new Map<string, string>();
const host = f.host;
const sh = (name: string, script: string) => labSh(host(name), script);
const WLAN = "198.51.100.18"; // the client's wlan address
const PORT = 5299;
const CLIENT_ENDPOINTS = [
  { interface: "wlan", flags: ["subflow"] },
  { interface: "lan", flags: ["subflow"] },
];
// ids as the model gives them: derived from interface and address (components/model.ts)
const [WLAN_ID, LAN_ID] = buildModel(configSchema.parse({ hosts: [{ name: "client", ssh: { host: "h", insecureIgnoreHostKey: true }, endpoints: CLIENT_ENDPOINTS }] })).hosts[0].endpoints.map(
  (e) => e.id,
);
const OURS = `${WLAN} id ${WLAN_ID} subflow dev wlan`;

const implicitOf = (address: string) =>
  endpoints(host("client")).find((e) => e.address === address && !e.dev && ((e as { implicit?: boolean }).implicit || (e as { rawflags?: string }).rawflags === "10"));

/**
 * One MPTCP connection from the client to the server's lan address, held open until the client's
 * join to the server's announced wlan address has made an implicit endpoint for WLAN (5 s at most).
 * Returns that endpoint's id.
 */
async function makeImplicit(): Promise<number> {
  const server = `import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", ${PORT})); s.listen(); s.settimeout(10)
c, _ = s.accept()
while c.recv(65536): pass`;
  const client = `import socket, subprocess, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
s.connect((${JSON.stringify(dialAddress(f.lab.topology, "client", "server"))}, ${PORT}))
for i in range(100):
    s.send(b"x" * 1000)
    t = subprocess.run(["ip", "mptcp", "endpoint", "show"], capture_output=True, text=True).stdout
    if any(l.startswith("${WLAN} ") and ("implicit" in l or "rawflags 10" in l) for l in t.splitlines()): break
    time.sleep(0.05)
s.close()`;
  labSh(host("server"), `python3 -c '${server}' >/dev/null 2>&1 </dev/null & echo started`);
  await waitFor("the server's listener", 5000, () => sh("server", "ss -Hltn").includes(`:${PORT} `));
  sh("client", `python3 -c '${client}'`);
  const e = implicitOf(WLAN);
  if (!e) throw new Error(`no implicit endpoint for ${WLAN}: ${sh("client", "ip mptcp endpoint show")}`);
  return e.id;
}

const line = (address: string) =>
  sh("client", "ip mptcp endpoint show")
    .split("\n")
    .find((l) => l.startsWith(`${address} `))
    ?.trim();

beforeAll(async () => {
  const cfg = labStackConfig(f.lab) as { hosts: any[]; links: unknown };
  Object.assign(
    cfg.hosts.find((h) => h.name === "client"),
    {
      hooks: true,
      limits: { subflows: 3, addAddrAccepted: 1 },
      endpoints: CLIENT_ENDPOINTS,
    },
  );
  cfg.hosts.find((h) => h.name === "server").limits.subflows = 3;
  config = cfg;
  for (const h of f.lab.hosts) pre.set(h.name, snapshot(h));
  await f.sim.up((await runProgram(config, { privateKey: f.privateKey })).commands);
});

describe("an implicit endpoint on an address we manage", () => {
  it("negative control: with the kernel's implicit endpoint on wlan's address, the add the old code ran is refused, and the entry point without the replacement fails", async () => {
    expect(line(WLAN)).toBe(OURS);
    sh("client", `${SYNC_PATH} wlan down`);
    expect(line(WLAN)).toBeUndefined();
    const id = await makeImplicit();
    console.log(`implicit endpoint: ${line(WLAN)}`);
    expect(id).not.toBe(WLAN_ID);
    const refused = labExec(host("client"), `ip mptcp endpoint add ${WLAN} id ${WLAN_ID} dev wlan subflow`);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("-22");
    expect(implicitOf(WLAN)?.id).toBe(id);
    // the installed entry point with ep_add_lines as it was (an add, no replacement)
    sh("client", `sed 's/ep_implicit_clear \\$_line ||/false ||/' ${SYNC_PATH} > /run/sync-old && chmod +x /run/sync-old && grep -q 'false || die' /run/sync-old`);
    const old = labExec(host("client"), "/run/sync-old wlan up");
    console.log(`old entry point: exit ${old.code}: ${old.stderr.trim()}`);
    expect(old.code).not.toBe(0);
    expect(old.stderr).toContain(`ip mptcp endpoint add ${WLAN} id ${WLAN_ID} dev wlan subflow failed`);
    expect(implicitOf(WLAN)?.id).toBe(id);
    sh("client", "rm -f /run/sync-old");
  });

  it("the hook's up replaces it: the run succeeds and the endpoint on wlan's address has our id and flags", () => {
    const id = implicitOf(WLAN)!.id;
    const r = labExec(host("client"), `${SYNC_PATH} wlan up`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`replaced the kernel's implicit endpoint ${WLAN} id ${id}`);
    expect(line(WLAN)).toBe(OURS);
    expect(implicitOf(WLAN)).toBeUndefined();
  });

  it("the hook's change (ep_set ifneeded) does not take the implicit endpoint for ours: it replaces it too", async () => {
    sh("client", `${SYNC_PATH} wlan down`);
    await makeImplicit();
    const r = labExec(host("client"), `${SYNC_PATH} wlan change`);
    expect(r.code, r.stderr).toBe(0);
    expect(line(WLAN)).toBe(OURS);
  });

  it("an endpoints apply over it succeeds (its add replaces the implicit endpoint, as the hooks' does) and leaves our table", async () => {
    sh("client", `${SYNC_PATH} wlan down`);
    await makeImplicit();
    const apply = f.sim.state.get("client-endpoints")!;
    const confirm = f.sim.state.get("client-endpoints-confirm")!;
    const r = await f.ssh.run(apply, apply.create!, "create");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("endpoints set");
    // the apply changes only what differs (no flush): the add of wlan's endpoint meets the implicit one
    expect(r.stdout).toContain(`replaced the kernel's implicit endpoint ${WLAN}`);
    expect((await f.ssh.run(confirm, confirm.create!, "create")).code).toBe(0);
    expect(line(WLAN)).toBe(OURS);
    expect(line("198.51.100.2")).toBe(`198.51.100.2 id ${LAN_ID} subflow dev lan`);
    expect(implicitOf(WLAN)).toBeUndefined();
  });

  it("destroy over an implicit endpoint restores every laptop as it was", async () => {
    sh("client", `${SYNC_PATH} wlan down`);
    await makeImplicit();
    await f.sim.destroy();
    for (const h of f.lab.hosts) expect(snapshot(h)).toBe(pre.get(h.name));
  });
});
