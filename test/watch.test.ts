// npm run watch's pure parts: `ip mptcp monitor` lines, the sampler's blocks, rates per
// interface, counter events and the frame.
import { describe, expect, it } from "vitest";
import { counterEvents, describeEvent, hostRates, intervalText, parseMonitorLine, parseSample, parseSubflows, rate, renderFrame, samplerCommand } from "../scripts/watch/watch";

const SF = "[SF_ESTABLISHED] token=7b0e3a21 remid=1 locid=0 saddr4=198.51.100.18 daddr4=198.51.100.17 sport=41234 dport=40000 backup=0 ifindex=3";

describe("ip mptcp monitor lines", () => {
  it("an event and its fields; anything else is no event", () => {
    expect(parseMonitorLine(SF)).toEqual({
      type: "SF_ESTABLISHED",
      fields: { token: "7b0e3a21", remid: "1", locid: "0", saddr4: "198.51.100.18", daddr4: "198.51.100.17", sport: "41234", dport: "40000", backup: "0", ifindex: "3" },
    });
    expect(parseMonitorLine("[       CREATED] token=1 saddr4=10.0.0.1 daddr4=10.0.0.2 sport=1 dport=2")?.type).toBe("CREATED");
    // iproute2 6.1 names the listener events by number
    expect(parseMonitorLine("[UNKNOWN 15] token=0 saddr4=0.0.0.0 sport=40000")?.type).toBe("UNKNOWN 15");
    expect(parseMonitorLine('Command "monitor" is unknown, try "ip mptcp help".')).toBeUndefined();
    expect(parseMonitorLine("")).toBeUndefined();
  });

  it("described for people: addresses with the host's interfaces, backup, the token", () => {
    const addrs = new Map([["198.51.100.18", "wlan"]]);
    expect(describeEvent(parseMonitorLine(SF)!, addrs)).toBe("subflow established  198.51.100.18:41234 (wlan) -> 198.51.100.17:40000  token 7b0e3a21");
    expect(describeEvent(parseMonitorLine("[SF_CLOSED] token=ab saddr4=198.51.100.18 daddr4=198.51.100.17 sport=1 dport=2 backup=1 error=110")!, addrs)).toBe(
      "subflow closed  198.51.100.18:1 (wlan) -> 198.51.100.17:2  backup  error 110  token ab",
    );
    expect(describeEvent(parseMonitorLine("[REMOVED] token=ab remid=1")!)).toBe("address removed (by the peer)  id 1  token ab");
    expect(describeEvent(parseMonitorLine("[ANNOUNCED] token=ab remid=2 daddr6=2001:db8::1 dport=0")!)).toBe("address announced (by the peer)  2001:db8::1  id 2  token ab");
  });
});

const block = (uptime: number, lanRx: number, wlanRx: number, extra = "") => `@sample
${uptime} 1.00
@bytes
lan/statistics/rx_bytes:${lanRx}
wlan/statistics/rx_bytes:${wlanRx}
lo/statistics/rx_bytes:5
lan/statistics/tx_bytes:100
wlan/statistics/tx_bytes:200
@netstat
MPTcpExt: MPCapableSYNRX MPJoinAckRx MPCapableFallbackACK
MPTcpExt: 1 ${extra ? 2 : 1} ${extra ? 1 : 0}
@addr
2: lan    inet 198.51.100.1/28 brd 198.51.100.15 scope global lan\\       valid_lft forever preferred_lft forever
3: wlan    inet 198.51.100.17/28 brd 198.51.100.31 scope global wlan\\       valid_lft forever preferred_lft forever
3: wlan    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever
@endpoints
[{"address":"198.51.100.17","id":1,"signal":true,"backup":true,"dev":"wlan"}]
@ss
ESTAB 0 0 198.51.100.1:40000 198.51.100.2:41000 bbr wscale:7,7 tcp-ulp-mptcp flags:Mec token:0000(id:0)/7b0e3a21(id:0) seq:1 sfseq:1 ssnoff:1 maplen:0
ESTAB 0 0 198.51.100.17:40000 198.51.100.18:41234 bbr tcp-ulp-mptcp flags:Jecv token:0000(id:1)/7b0e3a21(id:1) seq:1
ESTAB 0 0 203.0.113.2:22 203.0.113.1:50000 bbr wscale:7,7`;

describe("the sampler's blocks and the rates", () => {
  it("a block: uptime, bytes (not lo), counters, addresses, endpoints, subflows", () => {
    const s = parseSample(block(100.5, 1000, 2000))!;
    expect(s.uptime).toBe(100.5);
    expect(s.rx).toEqual({ lan: 1000, wlan: 2000 });
    expect(s.tx).toEqual({ lan: 100, wlan: 200 });
    expect(s.counters).toEqual({ MPCapableSYNRX: 1, MPJoinAckRx: 1, MPCapableFallbackACK: 0 });
    expect(s.addrs.get("198.51.100.17")).toBe("wlan");
    expect(s.endpoints).toEqual([{ address: "198.51.100.17", id: 1, flags: ["signal", "backup"], dev: "wlan" }]);
    // the SSH connection is plain TCP: not a subflow
    expect(s.subflows).toEqual([
      { local: "198.51.100.1", remote: "198.51.100.2", token: "7b0e3a21", backup: false, peerBackup: false },
      { local: "198.51.100.17", remote: "198.51.100.18", token: "7b0e3a21", backup: false, peerBackup: false },
    ]);
    expect(parseSample("@sample\n\n@end")).toBeUndefined();
  });

  it("ss: IPv6 and mapped addresses, backup flags", () => {
    expect(parseSubflows("ESTAB 0 0 [2001:db8::1]:40000 [::ffff:198.51.100.2]:4100 tcp-ulp-mptcp flags:JjbB token:12ab(id:2)/34cd(id:0)")).toEqual([
      { local: "2001:db8::1", remote: "198.51.100.2", token: "34cd", backup: true, peerBackup: true },
    ]);
    // control for the connection count: three connections on one interface, their remote tokens all 0000 (initial subflows)
    const three = [1, 2, 3].map((i) => `ESTAB 0 0 198.51.100.1:40000 198.51.100.2:4100${i} tcp-ulp-mptcp flags:Mec token:0000(id:0)/aa0${i}(id:0) seq:1`).join("\n");
    expect(new Set(parseSubflows(three).map((s) => s.token)).size).toBe(3);
  });

  it("rates: bytes over the uptime between two samples; none before the second, none when a counter goes back", () => {
    expect(rate(1000, 3000, 2)).toBe(1000);
    expect(rate(undefined, 3000, 2)).toBeNull();
    expect(rate(3000, 1000, 2)).toBeNull();
    expect(rate(1000, 1000, 0)).toBeNull();
    const a = parseSample(block(100, 1000, 2000))!;
    const b = parseSample(block(100.5, 501_000, 2000))!;
    const rows = hostRates(a, b);
    expect(Object.keys(rows)).toEqual(["lan", "wlan"]);
    expect(rows.lan).toEqual({ rx: 1_000_000, tx: 0, connections: 1, subflows: 1, backup: "no", endpoint: [] });
    expect(rows.wlan).toEqual({ rx: 0, tx: 0, connections: 1, subflows: 1, backup: "yes", endpoint: ["signal", "backup"] });
    expect(hostRates(undefined, b).lan.rx).toBeNull();
    // a path without MPTCP is shown; the one SSH arrives on is not, unless MPTCP uses it
    const mgmt = parseSample(block(101, 0, 0).replace("@endpoints", "4: mgmt    inet 203.0.113.2/30 scope global mgmt\\\n5: usb0    inet 10.1.0.2/24 scope global usb0\\\n@endpoints"))!;
    expect(Object.keys(hostRates(a, mgmt, [], "203.0.113.2"))).toEqual(["lan", "usb0", "wlan"]);
    // an interface shown before stays, gone when it no longer exists
    expect(hostRates(a, b, ["usb0"]).usb0).toMatchObject({ rx: null, gone: true });
  });

  it("counter events: what grew since the last sample, with its meaning", () => {
    const a = parseSample(block(100, 0, 0))!;
    const b = parseSample(block(101, 0, 0, "x"))!;
    expect(counterEvents(a.counters, b.counters)).toEqual([
      { counter: "MPCapableFallbackACK", delta: 1, meaning: "fallback to TCP (the peer's ACK carried no MPTCP option)" },
      { counter: "MPJoinAckRx", delta: 1, meaning: "join completed (server side)" },
    ]);
    expect(counterEvents(b.counters, b.counters)).toEqual([]);
  });

  it("the interval reaches the shell only as a plain number", () => {
    expect(intervalText(1)).toBe("1");
    expect(intervalText(0.25)).toBe("0.25");
    expect(() => intervalText(0.1)).toThrow();
    expect(() => intervalText(Number.NaN)).toThrow();
    expect(samplerCommand(2)).toContain("sleep 2 & s=$!");
  });
});

describe("the frame", () => {
  it("a row per host and interface, then the newest events; a host without ip mptcp monitor says so", () => {
    const a = parseSample(block(100, 0, 0))!;
    const b = parseSample(block(101, 2_500_000, 0))!;
    const frame = renderFrame(
      "title",
      [
        { name: "server", rows: hostRates(a, b) },
        { name: "client", rows: {}, status: "connection lost: the connection closed", monitor: "ip mptcp monitor is not available (exit 255): counters and rates only" },
      ],
      Array.from({ length: 30 }, (_, i) => ({ time: new Date(2026, 0, 1, 12, 0, i).getTime(), host: "server", text: `event ${i}` })),
      20,
    );
    expect(frame.slice(0, 7)).toEqual([
      "title",
      "",
      "HOST    IFACE            RX           TX  CONNS  SUBFLOWS  BACKUP  ENDPOINT",
      "server  lan    20.00 Mbit/s  0.00 Mbit/s  1      1         no      -",
      "server  wlan    0.00 Mbit/s  0.00 Mbit/s  1      1         yes     signal,backup",
      "client  connection lost: the connection closed",
      "",
    ]);
    expect(frame[8]).toBe("events: client: ip mptcp monitor is not available (exit 255): counters and rates only");
    expect(frame.length).toBe(19);
    expect(frame.at(-1)).toBe("12:00:29.000  server  event 29");
  });
});
