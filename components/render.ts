// The scripts of each concern of a host (sysctl, limits, endpoints, hooks): an idempotent `apply`
// and a `revert` that puts back what the host had before our first apply. Originals are saved on
// the host itself under STATE_DIR before anything changes, so revert needs nothing from Pulumi's
// state, the environment or previous output. The shell is in components/sh/<concern>.<action>.sh.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { HostModel } from "./model";
import { Concern, ConcernScripts, renderScript, SH_DIR } from "./script";
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

/** The host's drift check (npm run check): check.sh, then the check of each concern the config sets, read-only. */
export function renderCheck(host: HostModel): string {
  const concerns = concernsOf(host);
  const text = ["check.sh", ...concerns.map((c) => `${c}.check.sh`)].map((f) => readFileSync(join(SH_DIR, f), "utf8").trimEnd()).join("\n");
  return renderScript({ host, title: "drift check", source: "check.sh", text, ...(host.hooks ? hooksApplyExtras(host) : {}) });
}

export function renderHost(host: HostModel): ConcernScripts[] {
  return concernsOf(host).map((c) => renderConcern(host, c));
}
