// The scripts of each concern of a host (sysctl, limits, endpoints, hooks, services): an
// idempotent `apply` and a `revert` that puts back what the host had before our first apply, a
// confirmation for the applies that can cut the management path, and the host's drift check.
// Originals are saved on the host itself under STATE_DIR before anything changes, so revert needs
// nothing from Pulumi's state, the environment or previous output. The shell is in
// components/sh/<concern>.<action>.sh.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { HostModel } from "./model";
import { ConcernScripts, contentFunctions, renderScript, selfKeeping, selfText, SH_DIR } from "./script";
import { Concern, CONCERNS, concernSpec } from "./concerns";

export * from "./script";
export * from "./concerns";

/** Whether a concern's applies on this host are armed with a rollback and confirmed by a second command. */
export const isGuarded = (host: HostModel, concern: Concern) => host.confirmTimeout > 0 && concernSpec(concern).guarded;

/**
 * One concern's apply and revert; for a guarded concern also its confirmation. An apply is a
 * transaction (sh/lib/txn.sh): it carries its revert (what undoes a first apply) and keeps its own
 * text on the host as the last completed apply (what undoes the next, and what a confirmation
 * keeps as the last confirmed one: sh/lib/rollback.sh).
 */
export function renderConcern(host: HostModel, concern: Concern): ConcernScripts {
  const revert = renderScript({ host, title: `${concern} revert`, source: `${concern}.revert.sh` });
  const guarded = isGuarded(host, concern);
  const extras = concernSpec(concern).extras?.(host);
  const undo = [`# ---- what undoes this apply when no earlier one completed: the revert`, contentFunctions([{ fn: "content_revert", content: revert }], "MPTCP_PULUMI_UNDO")].join("\n");
  const code = [extras?.code, undo].filter((c) => c).join("\n");
  const apply = selfKeeping(renderScript({ host, title: `${concern} apply`, source: `${concern}.apply.sh`, data: extras?.data, code }));
  const confirm = guarded
    ? {
        create: renderScript({ host, title: `${concern} confirm`, source: `${concern}.confirm.sh` }),
        delete: renderScript({ host, title: `${concern} confirm delete`, source: "disarm.sh", data: [{ name: "CONCERN", value: () => concern }] }),
      }
    : undefined;
  return { concern, apply, revert, ...(confirm ? { confirm } : {}) };
}

/** The concerns a host's config asks for, in apply order. Unset concerns are left alone. */
export const concernsOf = (host: HostModel): Concern[] => CONCERNS.filter((c) => concernSpec(c).configured(host));

/**
 * The text an apply keeps on the host as its last completed apply (sh/lib/txn.sh: the variable
 * MPTCP_PULUMI_SELF, which loses its trailing newlines, written by printf '%s\n').
 */
const keptText = (apply: string): string => selfText(apply).replace(/\n+$/, "") + "\n";

/** The host's drift check (npm run check): check.sh, then the check of each concern the config sets, read-only. */
export function renderCheck(host: HostModel): string {
  const concerns = concernsOf(host);
  const text = ["check.sh", ...concerns.map((c) => `${c}.check.sh`)].map((f) => readFileSync(join(SH_DIR, f), "utf8").trimEnd()).join("\n");
  // what the concerns' applies carry beyond the host's data (the hooks' files and routing)
  const extras = concerns.flatMap((c) => concernSpec(c).extras?.(host) ?? []);
  // an apply's text names its stack: without the stack no sum can match, and none is given
  const sum = (c: Concern) =>
    host.stack === undefined
      ? "-"
      : createHash("sha256")
          .update(keptText(renderConcern(host, c).apply))
          .digest("hex");
  const data = [
    {
      name: "APPLIES",
      value: () => concerns.map((c) => `${c} ${sum(c)}`).join("\n"),
      note: "the concerns the config sets: CONCERN SHA256 of the text of the apply pulumi up would run now (-: the stack is not known)",
    },
    { name: "UNSET_CONCERNS", value: () => CONCERNS.filter((c) => !concerns.includes(c)).join(" "), note: "the concerns it does not set" },
    ...extras.flatMap((e) => e.data),
  ];
  return renderScript({ host, title: "drift check", source: "check.sh", text, data, code: extras.map((e) => e.code).join("\n") || undefined });
}

/**
 * The host's anchor: a command that changes nothing, created before the concerns' commands and
 * deleted after them. Its delete reverts whatever of this host entry is still applied on the host
 * without a command in Pulumi's state (an apply that committed on the host but whose command
 * failed: the engine records only commands that succeed).
 */
export function renderAnchor(host: HostModel): { apply: string; revert: string } {
  return {
    apply: renderScript({ host, title: "anchor", source: "anchor.apply.sh" }),
    revert: renderScript({
      host,
      title: "anchor delete",
      source: "anchor.revert.sh",
      data: [{ name: "SWEEP_ORDER", value: () => [...CONCERNS].reverse().join(" "), note: "every concern, in revert order (the anchor's delete)" }],
    }),
  };
}

export function renderHost(host: HostModel): ConcernScripts[] {
  return concernsOf(host).map((c) => renderConcern(host, c));
}
