// Keeping a host's MPTCP state right as interfaces come and go. One host-side entry point,
// SYNC_PATH (components/sh/sync.sh), brings an interface in line with the config (its endpoints,
// its source routing, rp_filter); the ifupdown, NetworkManager, dhclient, dhcpcd and
// networkd-dispatcher hooks and the boot unit only call it. The endpoints concern uses the same library functions, so "which endpoints
// an interface should have" has one implementation.
import { HostModel } from "./model";
import { createHash } from "node:crypto";
import { asPrinted, contentFunctions, DataVar, NETWORKD_CONF, renderScript, renderTemplate, SYNC_PATH, UNIT_NAME } from "./script";

interface HookSource {
  /** Source under components/sh/. */
  source: string;
  path: string;
  mode: string;
  /** Install only when this directory exists (the subsystem is present); a parent directory the path lacks is created (and removed on destroy). */
  onlyIn?: string;
  title: string;
  /** A script run on its own (#!/bin/sh) rather than sourced by its caller. */
  executable: boolean;
  /** set -eu and the rest of the prologue; hooks run by ifupdown or NetworkManager must never fail their caller for an unset variable. */
  strict?: boolean;
  /** A template whose title names no host: a rename leaves it as it is (a change restarts its service). */
  neutral?: boolean;
}

export const HOOK_SOURCES: HookSource[] = [
  { source: "sync.sh", path: SYNC_PATH, mode: "755", title: "interface sync (hooks and boot)", executable: true, strict: true },
  { source: "ifup.sh", path: "/etc/network/if-up.d/mptcp_up", mode: "755", onlyIn: "/etc/network/if-up.d", title: "ifupdown if-up hook", executable: true },
  { source: "ifdown.sh", path: "/etc/network/if-post-down.d/mptcp_down", mode: "755", onlyIn: "/etc/network/if-post-down.d", title: "ifupdown if-post-down hook", executable: true },
  {
    source: "nm-dispatcher.sh",
    path: "/etc/NetworkManager/dispatcher.d/70-mptcp-pulumi",
    mode: "755",
    onlyIn: "/etc/NetworkManager/dispatcher.d",
    title: "NetworkManager dispatcher script",
    executable: true,
  },
  { source: "dhclient-hook.sh", path: "/etc/dhcp/dhclient-exit-hooks.d/mptcp-pulumi", mode: "644", onlyIn: "/etc/dhcp/dhclient-exit-hooks.d", title: "dhclient exit hook", executable: false },
  // dhcpcd reads hooks only from its own directory (package space, the same on Debian 12 and 13)
  // and the admin's single /etc/dhcpcd.enter-hook and exit-hook: a file of our own in the
  // directory leaves the admin's files alone (`nohook mptcp-pulumi` in dhcpcd.conf skips it)
  { source: "dhcpcd-hook.sh", path: "/usr/lib/dhcpcd/dhcpcd-hooks/90-mptcp-pulumi", mode: "644", onlyIn: "/usr/lib/dhcpcd/dhcpcd-hooks", title: "dhcpcd hook", executable: false },
  // networkd-dispatcher 2.2.3 runs only root-owned 0755 scripts in root-owned 0755 directories;
  // its package ships routable.d, degraded.d, no-carrier.d, off.d (and carrier.d, dormant.d), not configured.d
  ...(["routable", "configured", "degraded", "no-carrier", "off"] as const).map(
    (state): HookSource => ({
      source: "networkd-dispatcher.sh",
      path: `/etc/networkd-dispatcher/${state}.d/70-mptcp-pulumi`,
      mode: "755",
      onlyIn: state === "configured" ? "/etc/networkd-dispatcher" : `/etc/networkd-dispatcher/${state}.d`,
      title: "networkd-dispatcher hook",
      executable: true,
    }),
  ),
  { source: "networkd.conf", path: NETWORKD_CONF, mode: "644", onlyIn: "/etc/systemd/network", title: "systemd-networkd drop-in", executable: false, neutral: true },
  { source: "boot.service", path: `/etc/systemd/system/${UNIT_NAME}`, mode: "644", onlyIn: "/etc/systemd/system", title: "boot unit", executable: false },
];

export interface HookFile {
  path: string;
  mode: string;
  onlyIn?: string;
  /** Source under components/sh/. */
  source: string;
  content: string;
}

function renderHookFile(host: HostModel, s: HookSource): HookFile {
  return {
    path: s.path,
    mode: s.mode,
    onlyIn: s.onlyIn,
    source: s.source,
    content: s.source.endsWith(".sh")
      ? renderScript({ host, title: s.title, source: s.source, strict: s.strict ?? false, installed: s.executable })
      : renderTemplate(host, s.title, s.source, s.neutral),
  };
}

export function renderHookFiles(host: HostModel): HookFile[] {
  return HOOK_SOURCES.map((s) => renderHookFile(host, s));
}

/** SYNC_PATH as installed on the host. */
export function renderSyncScript(host: HostModel): string {
  return renderHookFile(host, HOOK_SOURCES.find((s) => s.path === SYNC_PATH)!).content;
}

/** One content function per source: networkd-dispatcher's hook is one text in several directories. */
function oneEach<T extends { fn: string; content: string }>(files: T[]): T[] {
  const byFn = new Map<string, T>();
  for (const f of files) {
    const seen = byFn.get(f.fn);
    if (seen && seen.content !== f.content) throw new Error(`${f.fn}: one source renders two texts`);
    byFn.set(f.fn, seen ?? f);
  }
  return [...byFn.values()];
}

/**
 * The hooks apply's own data and code: the files to install, each printed by a function, with the
 * sha256 of what it prints, so one sha256sum on the host tells which files differ.
 */
export function hooksApplyExtras(host: HostModel): { data: DataVar[]; code: string } {
  const files = renderHookFiles(host).map((f) => ({ ...f, fn: `content_${f.source.replace(/[.-]/g, "_")}`, sum: createHash("sha256").update(asPrinted(f.content)).digest("hex") }));
  return {
    data: [
      {
        name: "FILES",
        value: () => files.map((f) => [f.path, f.mode, f.onlyIn ?? "", f.fn, f.sum].join("|")).join("\n"),
        note: "files: PATH|MODE|ONLY IN THIS DIRECTORY|FUNCTION PRINTING THE CONTENT|ITS SHA256",
      },
    ],
    code: [`# ---- the files (rendered from components/sh/)`, contentFunctions(oneEach(files), "MPTCP_PULUMI_FILE")].join("\n"),
  };
}
