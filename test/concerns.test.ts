// The registry of concerns (components/concerns.ts) against everything a concern must have:
// its shell sources, a render, a revert, its part of the drift check, its reports parsed into the
// outputs, its files watched by the lab's snapshots, its config keys, and its row in
// docs/architecture.md. Control: a concern registered with none of them fails each check.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { APPLIED_KINDS, CONCERN_TABLE, ConcernSpec, concernsOf, hostSchema, HostModel, renderCheck, renderConcern, requireValidConfig, SH_DIR, Concern } from "../components";
import { WATCHED_DIRS } from "./harness/labtest";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0jjx8ZDB5AVnTGlZAbsmZuR4b0VK4PwQ0Bq2Gpg6I";
/** A host whose config sets every concern. */
const FULL: HostModel = {
  ...requireValidConfig({
    hosts: [
      {
        name: "full",
        ssh: { host: "198.51.100.7", hostKey: KEY },
        sysctl: { enabled: true },
        limits: { subflows: 2, addAddrAccepted: 1 },
        endpoints: [{ interface: "wlan0", address: "198.51.100.17", flags: ["signal"] }],
        hooks: true,
        routing: [{ interface: "wlan0", mode: "source" }],
        services: [{ unit: "iperf3.service" }],
      },
    ],
  }).hosts[0],
  stack: "mptcp/test",
};
const ARCHITECTURE = readFileSync(join(__dirname, "..", "docs", "architecture.md"), "utf8");

/** The rows of docs/architecture.md's concern table: concern, config keys, guarded, reports. */
function rows(doc: string): { concern: string; keys: string[]; guarded: boolean; reports: string[] }[] {
  const section = doc.slice(doc.indexOf("## Concerns"), doc.indexOf("\n## ", doc.indexOf("## Concerns") + 1));
  const names = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
  return [...section.matchAll(/^\| `([a-z]+)` \|(.*)$/gm)].map((m) => {
    const [keys, guarded, reports] = m[2].split("|").map((c) => c.trim());
    return { concern: m[1], keys: names(keys), guarded: guarded === "yes", reports: names(reports) };
  });
}
const documented = (doc: string) => rows(doc).map((r) => r.concern);

/** What a registry lacks, one line per problem; empty when every concern is complete. */
function problems(table: Record<string, ConcernSpec>, doc: string): string[] {
  const out: string[] = [];
  const configured = concernsOf(FULL) as string[];
  const check = renderCheck(FULL);
  const watched = (path: string) => WATCHED_DIRS.some((d) => path === d || path.startsWith(`${d}/`));
  for (const [c, spec] of Object.entries(table)) {
    const sources = ["apply", "revert", "check", ...(spec.guarded ? ["confirm"] : [])].map((a) => `${c}.${a}.sh`);
    for (const f of sources) if (!existsSync(join(SH_DIR, f))) out.push(`${c}: components/sh/${f} missing`);
    if (!spec.configured(FULL)) out.push(`${c}: not configured by a host that sets everything`);
    if (!configured.includes(c)) out.push(`${c}: not among the concerns a host gets (concernsOf)`);
    let apply = "";
    try {
      const s = renderConcern(FULL, c as Concern);
      apply = s.apply;
      if (!s.revert.includes(`${c} revert`)) out.push(`${c}: its revert does not render`);
      if (spec.guarded !== (s.confirm !== undefined)) out.push(`${c}: guarded ${spec.guarded} but confirm ${s.confirm !== undefined}`);
    } catch (e) {
      out.push(`${c}: does not render (${(e as Error).message.split("\n")[0]})`);
    }
    const body = existsSync(join(SH_DIR, `${c}.check.sh`)) ? readFileSync(join(SH_DIR, `${c}.check.sh`), "utf8").trimEnd() : undefined;
    if (!body || !check.includes(body)) out.push(`${c}: not in the host's drift check`);
    if (spec.reports.length === 0) out.push(`${c}: reports nothing to the outputs`);
    for (const k of spec.reports) {
      if (!(APPLIED_KINDS as string[]).includes(k)) out.push(`${c}: reports ${k}, which components/applied.ts does not parse`);
      if (apply && !apply.includes(`report ${k} `)) out.push(`${c}: its apply never reports ${k}`);
    }
    for (const p of spec.writes(FULL)) if (!watched(p)) out.push(`${c}: writes ${p}, which the lab's snapshots do not watch (WATCHED_DIRS)`);
    const row = rows(doc).find((r) => r.concern === c);
    if (!row) out.push(`${c}: no row in docs/architecture.md's concern table`);
    else if (row.keys.join() !== spec.keys.join() || row.guarded !== spec.guarded || row.reports.join() !== spec.reports.join())
      out.push(`${c}: its row in docs/architecture.md says otherwise (keys, guarded or reports)`);
  }
  for (const d of documented(doc)) if (!(d in table)) out.push(`docs/architecture.md lists ${d}, which is not registered`);
  // every key of a host entry but its identity and connection belongs to exactly one concern
  for (const key of Object.keys(hostSchema.shape).filter((k) => !["name", "ssh", "confirmTimeout"].includes(k))) {
    const owners = Object.entries(table).filter(([, s]) => (s.keys as readonly string[]).includes(key));
    if (owners.length !== 1) out.push(`config key ${key}: owned by ${owners.length} concerns`);
  }
  return out;
}

describe("the registry of concerns", () => {
  it("every registered concern is rendered, reverted, checked, reported, watched and documented; every config key has one owner", () => {
    expect(Object.keys(CONCERN_TABLE)).toEqual(["sysctl", "limits", "networkmanager", "endpoints", "hooks", "services"]);
    expect(problems(CONCERN_TABLE, ARCHITECTURE)).toEqual([]);
  });

  it("control: a concern registered without sources, reports, watched files or a row fails each check; an undocumented row and an orphan key are found", () => {
    const fake: ConcernSpec = { keys: [], configured: () => false, guarded: true, reports: ["bogus" as never], writes: () => ["/opt/fake.conf"] };
    const found = problems({ ...CONCERN_TABLE, fake }, ARCHITECTURE);
    expect(found).toEqual([
      "fake: components/sh/fake.apply.sh missing",
      "fake: components/sh/fake.revert.sh missing",
      "fake: components/sh/fake.check.sh missing",
      "fake: components/sh/fake.confirm.sh missing",
      "fake: not configured by a host that sets everything",
      "fake: not among the concerns a host gets (concernsOf)",
      expect.stringMatching(/^fake: does not render/),
      "fake: not in the host's drift check",
      "fake: reports bogus, which components/applied.ts does not parse",
      "fake: writes /opt/fake.conf, which the lab's snapshots do not watch (WATCHED_DIRS)",
      "fake: no row in docs/architecture.md's concern table",
    ]);
    const { services: _s, ...noServices } = CONCERN_TABLE;
    expect(problems(noServices, ARCHITECTURE)).toEqual(["docs/architecture.md lists services, which is not registered", "config key services: owned by 0 concerns"]);
    expect(problems(CONCERN_TABLE, ARCHITECTURE.replace("| `hooks` |", "| hooks |"))).toEqual(["hooks: no row in docs/architecture.md's concern table"]);
    // a row whose facts the registry no longer has
    expect(problems({ ...CONCERN_TABLE, sysctl: { ...CONCERN_TABLE.sysctl, guarded: true } }, ARCHITECTURE)).toEqual(
      expect.arrayContaining(["sysctl: its row in docs/architecture.md says otherwise (keys, guarded or reports)"]),
    );
  });
});
