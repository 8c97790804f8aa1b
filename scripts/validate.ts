// npm run validate -- Pulumi.<stack>.yaml: the stack config's checks without Pulumi.
// Exits 0 when valid, 1 with every error listed, 2 on usage errors.
// Only the modules it needs: the components barrel would load Pulumi (about a second) for nothing.
import { readStackConfig } from "../components/stackfile";
import { formatErrors, validateConfig } from "../components/validate";

const file = process.argv[2];
if (!file || process.argv.length > 3) {
  console.error("usage: npm run validate -- Pulumi.<stack>.yaml");
  process.exit(2);
}
let raw;
try {
  raw = readStackConfig(file);
} catch (e) {
  console.error(`${file}: cannot read: ${(e as Error).message}`);
  process.exit(2);
}
const result = validateConfig(raw);
if (result.ok) {
  const m = result.model;
  console.log(`${file}: valid (${m.hosts.length} host${m.hosts.length === 1 ? "" : "s"}, ${m.links.length} link${m.links.length === 1 ? "" : "s"})`);
  process.exit(0);
}
console.error(`${file}: ${formatErrors(result.errors)}`);
process.exit(1);
