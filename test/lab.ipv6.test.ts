// The same lab suite, unchanged, on IPv6-only paths: the client dials the server's IPv6 address,
// the server announces its other IPv6 address, and the join uses it.
import { join } from "node:path";
import { labSuite } from "./harness/suite";
import { readTopology } from "../scripts/lab/topology";

labSuite({ label: "IPv6 paths", topology: readTopology(join(__dirname, "fixtures", "ipv6.topology.yaml")) });
