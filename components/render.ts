// The scripts of each concern of a host (sysctl, limits, endpoints, hooks): an idempotent `apply`
// and a `revert` that puts back what the host had before our first apply. Originals are saved on
// the host itself under STATE_DIR before anything changes, so revert needs nothing from Pulumi's
// state, the environment or previous output. The shell is in components/sh/<concern>.<action>.sh.
import { HostModel } from "./model";
import { Concern, ConcernScripts, renderScript } from "./script";
import { hooksApplyExtras } from "./hooks";

export * from "./script";

/** One concern's apply and revert. */
export function renderConcern(host: HostModel, concern: Concern): ConcernScripts {
  const extras = concern === "hooks" ? hooksApplyExtras(host) : {};
  return {
    concern,
    apply: renderScript({ host, title: `${concern} apply`, source: `${concern}.apply.sh`, ...extras }),
    revert: renderScript({ host, title: `${concern} revert`, source: `${concern}.revert.sh` }),
  };
}

/** The concerns a host's config asks for, in apply order. Unset concerns are left alone. */
export function concernsOf(host: HostModel): Concern[] {
  const out: Concern[] = [];
  if (host.sysctl.length) out.push("sysctl");
  if (host.limits.subflows !== undefined || host.limits.addAddrAccepted !== undefined) out.push("limits");
  if (host.endpoints.length) out.push("endpoints");
  if (host.hooks) out.push("hooks");
  if (host.services.length) out.push("services");
  return out;
}

export function renderHost(host: HostModel): ConcernScripts[] {
  return concernsOf(host).map((c) => renderConcern(host, c));
}
