// The lab's generated topologies (unit tier: no lab is built).
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MAX_HOSTS, pairsTopology, pathEnds, readTopology } from "../scripts/lab/topology";

describe("pairsTopology: the scale benchmark's labs", () => {
  it("64 laptops are scripts/lab/topologies/64-laptops.yaml", () => {
    expect(pairsTopology(64)).toEqual(readTopology(join(__dirname, "../scripts/lab/topologies/64-laptops.yaml")));
  });

  it(`the largest lab (${MAX_HOSTS} laptops) fills 198.51.100.0/24 with /30s, every address distinct`, () => {
    const t = pairsTopology(MAX_HOSTS);
    expect(t.hosts).toHaveLength(MAX_HOSTS);
    const v4 = pathEnds(t)
      .filter((e) => !e.address.includes(":"))
      .map((e) => e.address);
    expect(v4).toHaveLength(MAX_HOSTS);
    expect(new Set(v4).size).toBe(MAX_HOSTS);
    expect(v4.at(-1)).toBe("198.51.100.254");
  });

  it("refuses an odd count, fewer than 2 or more than the lab holds", () => {
    for (const n of [0, 3, MAX_HOSTS + 2, 2.5]) expect(() => pairsTopology(n)).toThrow(/even number of laptops, 2 to 128/);
  });
});
