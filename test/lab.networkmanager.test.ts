// NetworkManager itself drives our dispatcher hook: the client laptop runs NetworkManager (under
// its own systemd), a profile of its own re-addresses wlan, and NetworkManager's dispatcher runs
// /etc/NetworkManager/dispatcher.d/70-mptcp-pulumi, which moves the endpoint and source rule.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYNC_PATH } from "../components";
import { LabState, labExec, labSh, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY, Topology } from "../scripts/lab/topology";
import { startLab, stopLab } from "./harness/fixture";
import { runProgram, StackConfig } from "./harness/program";
import { CommandProviderSim } from "./harness/provider";
import { SshRunner } from "./harness/ssh";
import { endpoints } from "./harness/labtest";

const topology: Topology = { ...DEFAULT_TOPOLOGY, hosts: [DEFAULT_TOPOLOGY.hosts[0], { ...DEFAULT_TOPOLOGY.hosts[1], network: "networkmanager" }] };
const DISPATCHER = "/etc/NetworkManager/dispatcher.d/70-mptcp-pulumi";
let lab: LabState;
let ssh: SshRunner;
let sim: CommandProviderSim;
let config: StackConfig;
let privateKey: string;

const client = () => lab.hosts[1];
const sh = (script: string) => labSh(client(), script);
const wlanEndpoint = () => endpoints(client()).find((e) => e.dev === "wlan")?.address;
const rulesFrom = (address: string) => sh("ip -4 rule show").split("\n").filter((l) => l.includes(`from ${address} `)).length;

/** NetworkManager's dispatcher runs scripts after the state change: wait for the endpoint and its rule. */
async function endpointBecomes(address: string | undefined, ms = 5000): Promise<number> {
  const t0 = performance.now();
  const settled = () => wlanEndpoint() === address && (address === undefined ? !/lookup 120/.test(sh("ip -4 rule show")) : rulesFrom(address) === 1);
  while (performance.now() - t0 < ms && !settled()) await new Promise((r) => setTimeout(r, 50));
  return performance.now() - t0;
}

/**
 * Activates a keyfile profile of the laptop's own that gives wlan `address`. NetworkManager's
 * own MPTCP endpoint handling (connection.mptcp-flags, on by default since 1.40) is switched off,
 * as it must be wherever this project manages the endpoints: otherwise NetworkManager adds and
 * removes endpoints of its own on every activation.
 */
function profileUp(address: string): void {
  sh(`nmcli con delete lab-wlan >/dev/null 2>&1 || true; nmcli con add type ethernet ifname wlan con-name lab-wlan connection.mptcp-flags disabled ipv4.method manual ipv4.addresses ${address}/28 ipv4.gateway 198.51.100.17 ipv6.method disabled >/dev/null && nmcli con up lab-wlan >/dev/null`);
}

beforeAll(async () => {
  ({ lab, ssh, sim, privateKey } = await startLab(topology, "n"));
  const cfg = labStackConfig(lab) as { hosts: any[]; links: unknown };
  Object.assign(cfg.hosts[1], { hooks: true, endpoints: [{ interface: "wlan", flags: [] }], routing: [{ interface: "wlan", mode: "source", table: 120 }] });
  config = cfg;
});

afterAll(() => stopLab({ lab, ssh }));

describe("NetworkManager on a lab laptop runs our dispatcher hook", () => {
  it("NetworkManager runs and manages the path interfaces, never the management link", () => {
    expect(sh("systemctl is-active NetworkManager").trim()).toBe("active");
    const devices = Object.fromEntries(sh("nmcli -t -f DEVICE,STATE device").trim().split("\n").map((l) => l.split(":")));
    console.log(`nmcli device: ${JSON.stringify(devices)}`);
    expect(devices.mgmt).toBe("unmanaged");
    expect(devices.wlan).not.toBe("unmanaged");
    expect(devices.lan).not.toBe("unmanaged");
  });

  it("a profile re-addresses wlan: NetworkManager's dispatcher runs our hook and the endpoint and rule follow; down removes them", async () => {
    await sim.up((await runProgram(config, { privateKey })).commands);
    expect(labExec(client(), `test -x ${DISPATCHER}`).code).toBe(0);
    expect(wlanEndpoint()).toBe("198.51.100.18");
    profileUp("198.51.100.20");
    const took = await endpointBecomes("198.51.100.20");
    console.log(`nmcli con up: endpoint and rule on 198.51.100.20 ${took.toFixed(0)} ms after activation`);
    expect(wlanEndpoint()).toBe("198.51.100.20");
    expect(rulesFrom("198.51.100.20")).toBe(1);
    expect(rulesFrom("198.51.100.18")).toBe(0);
    sh("nmcli con down lab-wlan >/dev/null");
    await endpointBecomes(undefined);
    expect(wlanEndpoint()).toBeUndefined();
    expect(rulesFrom("198.51.100.20")).toBe(0);
    sh("nmcli con up lab-wlan >/dev/null");
    await endpointBecomes("198.51.100.20");
    expect(wlanEndpoint()).toBe("198.51.100.20");
  });

  it("negative control: with our dispatcher script disabled, the same re-addressing leaves a stale endpoint (nothing else, not the ifupdown bridge, moves it)", async () => {
    sh(`chmod -x ${DISPATCHER}`);
    try {
      profileUp("198.51.100.21");
      await endpointBecomes("198.51.100.21", 2000);
      expect(sh("ip -br -4 addr show wlan")).toContain("198.51.100.21");
      expect(wlanEndpoint()).toBe("198.51.100.20");
    } finally {
      sh(`chmod +x ${DISPATCHER}`);
    }
    // the entry point brings it in line again
    sh(`${SYNC_PATH} wlan change`);
    expect(wlanEndpoint()).toBe("198.51.100.21");
  });

  it("destroy removes the dispatcher script, the entry point and the source rule", async () => {
    await sim.destroy();
    expect(labExec(client(), `test -e ${DISPATCHER}`).code).not.toBe(0);
    expect(labExec(client(), `test -e ${SYNC_PATH}`).code).not.toBe(0);
    expect(sh("ip -4 rule show")).not.toMatch(/lookup 120/);
    expect(endpoints(client())).toEqual([]);
  });
});
