// The lab suite (test/harness/suite.ts) on the default two-laptop topology, or on
// MPTCP_LAB_TOPOLOGY with MPTCP_LAB_CONFIG when they are set.
import { labSuite, optionsFromEnv } from "./harness/suite";

labSuite(optionsFromEnv());
