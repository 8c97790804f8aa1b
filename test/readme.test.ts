// Keeps README's configuration reference in step with the schema, both ways.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { configSchema } from "../components/core";

const readme = readFileSync(join(__dirname, "..", "README.md"), "utf8");

/** Leaf key paths of a zod schema: hosts[].ssh.host, ... */
function leaves(schema: z.ZodType, prefix = ""): string[] {
  const def = (schema as any)._zod.def;
  if (def.type === "optional" || def.type === "default" || def.type === "nullable") return leaves(def.innerType, prefix);
  if (def.type === "array") {
    const el = def.element._zod.def;
    return el.type === "object" ? leaves(def.element, `${prefix}[]`) : [prefix];
  }
  if (def.type === "object") {
    return Object.entries(def.shape as Record<string, z.ZodType>).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
  }
  return [prefix];
}

const table = readme.slice(readme.indexOf("## Configuration reference"), readme.indexOf("## What preview"));
const documented = [...table.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);

describe("README configuration reference", () => {
  const keys = [...leaves(configSchema), "sshPrivateKey"];

  it("documents every key of the schema", () => {
    expect(keys.length).toBeGreaterThan(20);
    expect(keys.filter((k) => !documented.includes(k))).toEqual([]);
  });

  it("documents no key the schema lacks", () => {
    expect(documented.filter((k) => !keys.includes(k))).toEqual([]);
  });

  it("shows the test command", () => {
    expect(readme).toMatch(/```sh\nnpm test\n```/);
  });
});
