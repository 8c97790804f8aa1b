// The lab suite (test/harness/suite.ts), unchanged, on the default topology with a config whose
// only announced address is a backup (so (g) flaps the primary path and shows the backup carrying
// the data) and whose ssh.user on each laptop is a user the lab makes (ops, deploy), neither root
// nor the lab's admin (test/fixtures/Pulumi.backup-announce.yaml).
import { join } from "node:path";
import { labSuite } from "./harness/suite";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";

labSuite({ label: "a backup announcement, users ops and deploy", topology: DEFAULT_TOPOLOGY, configFile: join(__dirname, "fixtures", "Pulumi.backup-announce.yaml") });
