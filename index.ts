// The stack program: reads the mptcp stack config (Pulumi.<stack>.yaml), validates all of it
// before registering anything, and hands it to one MptcpNetwork (one MptcpHost per host; hosts
// apply in parallel). Everything else lives in the package's components (components/index.ts).
import * as pulumi from "@pulumi/pulumi";
import { ConfigValidationError, MptcpNetwork, NetworkHostArgs, LinkArgs, requireValidConfig, STACK_NETWORK } from "./components";

const config = new pulumi.Config("mptcp");
const raw = { hosts: config.getObject<unknown>("hosts"), links: config.getObject<unknown>("links") };
try {
  requireValidConfig(raw);
} catch (e) {
  if (e instanceof ConfigValidationError) throw new pulumi.RunError(e.message);
  throw e;
}
const privateKey = config.getSecret("sshPrivateKey");
const network = new MptcpNetwork(STACK_NETWORK, {
  hosts: (raw.hosts as NetworkHostArgs[]).map((h) => ({ ...h, ssh: { ...h.ssh, ...(privateKey ? { privateKey } : {}) } })),
  links: raw.links as LinkArgs[] | undefined,
});

/** Per host: what each concern reported after apply (sysctl values, limits, endpoints with resolved addresses, hooks, service drop-ins). */
export const hosts = network.hosts;

/** Per link: the address the client dials and the joins and subflows each connection should get (`npm run verify` checks them). */
export const links = network.links;
