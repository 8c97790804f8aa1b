// npm run validate -- Pulumi.<stack>.yaml: the stack config's checks without Pulumi.
// Exits 0 when valid, 1 with every error listed, 2 on usage errors.
// Only the modules it needs: the components barrel would load Pulumi (about a second) for nothing.
import { readStackConfig } from "../components/stackfile";
import { formatErrors, validateConfig } from "../components/validate";
import { CliIo, exitWith } from "./cli-io";

/** npm run validate with these arguments: its exit code. */
export async function validateMain(argv: string[], io: CliIo): Promise<number> {
  const [file] = argv;
  if (!file || argv.length > 1) {
    io.err("usage: npm run validate -- Pulumi.<stack>.yaml");
    return 2;
  }
  let raw;
  try {
    raw = readStackConfig(file);
  } catch (e) {
    io.err(`${file}: cannot read: ${(e as Error).message}`);
    return 2;
  }
  const result = validateConfig(raw);
  if (result.ok) {
    const m = result.model;
    io.out(`${file}: valid (${m.hosts.length} host${m.hosts.length === 1 ? "" : "s"}, ${m.links.length} link${m.links.length === 1 ? "" : "s"})`);
    return 0;
  }
  io.err(`${file}: ${formatErrors(result.errors)}`);
  return 1;
}

if (require.main === module) exitWith("validate", validateMain);
