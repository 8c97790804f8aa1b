// Shell quoting and the one way our scripts are delivered to a host.

/** Quotes a value for POSIX sh: 'it'\''s'. */
export function shq(value: string | number): string {
  const s = String(value);
  if (/^[A-Za-z0-9_.,:/@%+=-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export const HEREDOC_MARK = "MPTCP_PULUMI_SCRIPT";

/**
 * The command text sent over SSH: the login shell hands the script to `sh` through a quoted
 * heredoc, so the script is readable in `pulumi preview --diff`, nothing in it is expanded by
 * the login shell, and no stdin or environment support is needed from the provider or sshd.
 * A non-root user runs it through `sudo -n`, failing clearly when sudo wants a password.
 */
export function wrapScript(script: string, opts: { user: string; host: string }): string {
  if (script.split("\n").includes(HEREDOC_MARK)) throw new Error(`script contains the heredoc terminator ${HEREDOC_MARK}`);
  const body = script.endsWith("\n") ? script : script + "\n";
  // exec: the login shell that runs the command becomes sh instead of waiting on it (a process fewer per command)
  if (opts.user === "root") return `exec sh -s <<'${HEREDOC_MARK}'\n${body}${HEREDOC_MARK}`;
  const who = shq(`mptcp-pulumi[${opts.host}]: error: user ${opts.user} cannot run sudo without a password: add a NOPASSWD sudoers rule for it (sudo -n true must succeed), or connect as root`);
  return `sudo -n true 2>/dev/null || { echo ${who} >&2; exit 1; }\nexec sudo -n sh -s <<'${HEREDOC_MARK}'\n${body}${HEREDOC_MARK}`;
}
