// The lab suite (test/harness/suite.ts), unchanged, on the seed's two laptops as Ubuntu desktops:
// NetworkManager on both, a profile per path with a gateway and connection.mptcp-flags at its
// default (test/fixtures/networkmanager.topology.yaml).
import { join } from "node:path";
import { labSuite } from "./harness/suite";
import { readTopology } from "../scripts/lab/topology";

labSuite({ label: "NetworkManager on both laptops", topology: readTopology(join(__dirname, "fixtures", "networkmanager.topology.yaml")) });
