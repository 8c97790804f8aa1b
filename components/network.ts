// MptcpNetwork: hosts and the links between them. It runs the checks one host cannot make alone
// (announcements against the peer's limits, address families across a link, the addresses a
// client reaches, one entry per SSH target), predicts each link's subflows, and makes one
// MptcpHost per host. Nothing of any host is registered until the whole network passed them.
import * as pulumi from "@pulumi/pulumi";
import { HostApplied } from "./applied";
import { MptcpNetworkArgs, NetworkHostArgs } from "./args";
import { MptcpHost, NETWORK_MEMBERS } from "./host";
import { checkNow, checkWhenKnown, networkPaths, reportUnknown, targetsWithDeferred, withPlaceholders } from "./inputs";
import { LinkPrediction, predictLinks } from "./model";
import { NETWORK_TYPE } from "./render";
import { ConfigValidationError, validateConfig } from "./validate";

export type { MptcpNetworkArgs } from "./args";

/**
 * Several hosts' MPTCP state and the client-server links between them: validated together (the
 * limits of a client against what its servers announce, address families, reachability), with
 * the subflows each link's connections should get, and one MptcpHost per host.
 */
export class MptcpNetwork extends pulumi.ComponentResource {
  /** Per host name: what its applies left on it (MptcpHost.applied). */
  public readonly hosts: pulumi.Output<Record<string, HostApplied>>;
  /** Per link: the address the client dials and the joins and subflows each connection should get (`npm run verify` checks them on the hosts). */
  public readonly links: pulumi.Output<LinkPrediction[]>;

  constructor(name: string, args: MptcpNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    const where = `MptcpNetwork "${name}"'s args`;
    const { raw, deferred, errors } = withPlaceholders({ hosts: args?.hosts, links: args?.links });
    const config = raw as { hosts: unknown; links?: unknown };
    const problems = checkNow(config, deferred, networkPaths, errors);
    if (problems.length) throw new pulumi.RunError(new ConfigValidationError(problems, where).message);
    const now = validateConfig(config, { links: new Set((args.links ?? []).map((_, i) => i)), targets: targetsWithDeferred(deferred) });
    if (!now.ok) throw new Error(`${where}: validation disagrees with itself: ${JSON.stringify(now.errors)}`);
    super(NETWORK_TYPE, name, {}, opts);
    reportUnknown(deferred, networkPaths, this);
    const model = checkWhenKnown(config, deferred, networkPaths, where, this);
    const hosts = args.hosts.map((h: NetworkHostArgs, i) => {
      const { name: hostName, ...hostArgs } = h;
      NETWORK_MEMBERS.set(hostArgs, { now: now.model.hosts[i], model: model.apply((m) => m.hosts[i]) });
      return new MptcpHost(hostName, hostArgs, { parent: this });
    });
    this.hosts = pulumi.all(Object.fromEntries(hosts.map((h, i) => [args.hosts[i].name, h.applied])));
    this.links = model.apply(predictLinks);
    this.registerOutputs({ hosts: this.hosts, links: this.links });
  }
}
