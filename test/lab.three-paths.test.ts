// (h) The same lab suite, unchanged, on another topology (three paths) and a stack config written
// the way a user might: no announcements (joins from the client's subflow endpoints), limits at
// 8, a backup path, hooks and source routing, and a non-root SSH user through sudo.
import { join } from "node:path";
import { labSuite } from "./harness/suite";
import { readTopology } from "../scripts/lab/topology";

const fixtures = join(__dirname, "fixtures");
labSuite({
  label: "three paths, a user's config",
  topology: readTopology(join(fixtures, "three-paths.topology.yaml")),
  configFile: join(fixtures, "Pulumi.three-paths.yaml"),
});
