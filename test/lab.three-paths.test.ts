// (h) The same lab suite, unchanged, on another topology and stack config: three paths, one join
// from the server's announcement (wlan) and one from a client subflow endpoint (lte).
import { join } from "node:path";
import { labSuite } from "./harness/suite";
import { readTopology } from "../scripts/lab/topology";

const fixtures = join(__dirname, "fixtures");
labSuite({
  label: "three paths",
  topology: readTopology(join(fixtures, "three-paths.topology.yaml")),
  configFile: join(fixtures, "Pulumi.three-paths.yaml"),
});
