// The Pulumi program: read the mptcp stack config, validate all of it before registering
// anything, then one MptcpHost per host (hosts apply in parallel).
import * as pulumi from "@pulumi/pulumi";
import { ConfigValidationError, MptcpHost, predictLinks, requireValidConfig } from "./components";

const config = new pulumi.Config("mptcp");

function loadModel() {
  try {
    return requireValidConfig({ hosts: config.getObject<unknown>("hosts"), links: config.getObject<unknown>("links") });
  } catch (e) {
    if (e instanceof ConfigValidationError) throw new pulumi.RunError(e.message);
    throw e;
  }
}

const model = loadModel();
const privateKey = config.getSecret("sshPrivateKey");

/** Per host: what each concern reported after apply (sysctl values, limits, endpoints with resolved addresses, hooks, service drop-ins). */
export const hosts = Object.fromEntries(
  model.hosts.map((host) => [host.name, new MptcpHost(host.name, { host, privateKey }).applied]),
);

/** Per link: the address the client dials and the joins and subflows each connection should get (`npm run verify` checks them). */
export const links = predictLinks(model);
