// The same lab suite, unchanged, on a server with two clients on paths of their own (laptop-a on
// lan/wlana, laptop-b on lanb/wlanb), with the stack `npm run lab -- up --topology` writes for it.
// The server announces wlana and wlanb to both clients; each reaches only its own, so each link
// gets one join, not the two the announcements alone would predict: the suite's prediction takes
// reachability from the topology, npm run verify's from the client's routes, and both must match
// the kernel's MPJoin counters ((e), (f)).
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { predictLinks, requireValidConfig, validateConfig } from "../components";
import { labSuite } from "./harness/suite";
import { dialAddress } from "../scripts/lab/lab";
import { pathEnds, reaches, readTopology } from "../scripts/lab/topology";

const topology = readTopology(join(__dirname, "fixtures", "two-clients.topology.yaml"));
labSuite({ label: "two clients", topology });

describe("two clients: what reachability changes in the prediction and the validation", () => {
  // the stack the lab writes for this topology, with placeholder ssh sections
  const ends = pathEnds(topology);
  const server = ends.filter((e) => e.host === "server");
  const dial = (c: string) => dialAddress(topology, c, "server")!;
  const own = (c: string) => server.filter((e) => reaches(e, c) && e.path.startsWith("wlan")).map((e) => e.address);
  const ssh = (n: number) => ({ host: `203.0.113.${n}`, insecureIgnoreHostKey: true });
  const stack = (accepted: number, reaches: boolean) => ({
    hosts: [
      {
        name: "server",
        ssh: ssh(1),
        limits: { subflows: 2, addAddrAccepted: 0 },
        endpoints: server.filter((e) => e.path.startsWith("wlan")).map((e) => ({ interface: e.path, address: e.address, flags: ["signal"] })),
      },
      { name: "laptop-a", ssh: ssh(3), limits: { subflows: 2, addAddrAccepted: accepted } },
      { name: "laptop-b", ssh: ssh(5), limits: { subflows: 2, addAddrAccepted: accepted } },
    ],
    links: ["laptop-a", "laptop-b"].map((c) => ({ client: c, server: "server", address: dial(c), ...(reaches ? { reaches: own(c) } : {}) })),
  });

  it("without links[].reaches the model predicts 2 joins per link (the suite above observes 1); with it, 1", () => {
    expect(predictLinks(requireValidConfig(stack(2, false))).map((l) => l.joins)).toEqual([2, 2]);
    expect(predictLinks(requireValidConfig(stack(2, true))).map((l) => l.joins)).toEqual([1, 1]);
  });

  it("validation asks add_addr_accepted to cover the announcements a client reaches, not all of them", () => {
    expect(validateConfig(stack(1, true)).ok).toBe(true);
    const r = validateConfig(stack(1, false));
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.errors.map((e) => e.path)).toEqual(["mptcp:hosts[1].limits.addAddrAccepted", "mptcp:hosts[2].limits.addAddrAccepted"]);
  });
});
