// MptcpHost: one host's desired MPTCP state, applied over SSH. One remote.Command per concern
// the config sets (sysctl -> limits -> endpoints, chained with dependsOn); each command's
// `create` applies idempotently and its `delete` restores what the host had before. The scripts
// themselves reach the host once, through one remote.CopyToRemote per host (components/stage.ts);
// a command's create and delete check and run their script there.
import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import { HostApplied, parseApplied } from "./applied";
import { HostModel } from "./model";
import { anchorName, commandName, renderAnchor, renderHost } from "./render";
import { cleanupText, dataComments, runnerText, STAGE_ROOT, stageEntry, stageLocal, stageRemote } from "./stage";

export interface MptcpHostArgs {
  /** The host's validated model (from requireValidConfig). */
  host: HostModel;
  /** SSH private key (a secret). Defaults to the SSH agent at SSH_AUTH_SOCK. */
  privateKey?: pulumi.Input<string>;
}

/** The SSH connection the command provider dials; the SDK stores it as a secret. */
export function connectionFor(host: HostModel, privateKey?: pulumi.Input<string>): remote.CommandArgs["connection"] {
  return {
    host: host.ssh.host,
    port: host.ssh.port,
    user: host.ssh.user,
    ...(host.ssh.hostKey ? { hostKey: host.ssh.hostKey } : {}),
    ...(privateKey ? { privateKey } : {}),
  };
}

export class MptcpHost extends pulumi.ComponentResource {
  /** What the host holds after each concern's last apply, as the applies reported it (components/applied.ts). */
  public readonly applied: pulumi.Output<HostApplied>;

  constructor(name: string, args: MptcpHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mptcp:index:Host", name, {}, opts);
    const host = { ...args.host, stack: `${pulumi.getProject()}/${pulumi.getStack()}` };
    if (host.ssh.insecureIgnoreHostKey && !host.ssh.hostKey) {
      pulumi.log.warn(`mptcp:hosts[${host.index}].ssh: insecureIgnoreHostKey is set: the host key of ${host.ssh.host} is not checked, so anyone on the path can impersonate it. Set ssh.hostKey.`, this);
    }
    const connection = connectionFor(host, args.privateKey);
    // A different target host must revert the old one and apply the new one (replace), not update.
    const triggers = [host.ssh.host, host.ssh.port, host.ssh.user];
    const stdouts: pulumi.Output<string>[] = [];
    const concerns = renderHost(host);
    const anchor = renderAnchor(host);
    const entry = stageEntry(host.stack, host.name);
    const remotePath = stageRemote(entry);
    const copyName = `${name}-scripts`;
    // the title line without where it was generated from (the copied script says it)
    const title = (script: string) => script.slice(0, script.indexOf("\n")).replace(/, generated from .*$/, "");
    // create: the title and the data the script carries (what `pulumi preview --diff` shows of a
    // change); delete: the title
    const run = (script: string, data = false) =>
      runnerText(script, { user: host.ssh.user, host: host.name, remote: remotePath, copy: copyName, about: [title(script), ...(data ? dataComments(script) : [])] });
    let previous: pulumi.Resource | undefined;
    if (concerns.length > 0) {
      const scripts = [anchor.apply, anchor.revert, ...concerns.flatMap((s) => [s.apply, s.revert, ...(s.confirm ? [s.confirm.create, s.confirm.delete] : [])])];
      // A new target gets the files too (the provider's update copies only when the source's hash
      // or remotePath changed: copyController.go at v1.2.1), hence the triggers (a replace).
      previous = new remote.CopyToRemote(
        copyName,
        { connection, source: new pulumi.asset.FileArchive(stageLocal(entry, scripts)), remotePath: STAGE_ROOT, triggers },
        { parent: this },
      );
      // Removes the copied scripts when deleted: after every command that runs one (they all
      // depend on it), and also when the first up failed at the host. A new target (the copy's
      // triggers: another user's home, another machine) or directory (a renamed stack) replaces
      // it create-first (no deleteBeforeReplace), so the old directory is removed at the end of
      // the update, through the old connection, after the old commands' deletes ran from it.
      previous = new remote.Command(
        `${copyName}-cleanup`,
        { connection, delete: cleanupText(remotePath, host.name), triggers, addPreviousOutputInEnv: false },
        { parent: this, dependsOn: [previous] },
      );
      // The anchor: created first, deleted last; its delete reverts what of this entry is still on
      // the host without a command in the stack (an apply that committed there but failed here).
      // No triggers: a changed ssh target updates it in place (its create changes nothing), so it
      // is never replaced, whose delete would revert the entry's concerns under their commands.
      previous = new remote.Command(
        anchorName(name),
        { connection, create: run(anchor.apply), delete: run(anchor.revert), addPreviousOutputInEnv: false },
        { parent: this, dependsOn: [previous], deleteBeforeReplace: true },
      );
    }
    for (const scripts of concerns) {
      const command = new remote.Command(
        commandName(name, scripts.concern),
        { connection, create: run(scripts.apply, true), delete: run(scripts.revert), triggers, addPreviousOutputInEnv: false },
        { parent: this, dependsOn: previous ? [previous] : [], deleteBeforeReplace: true },
      );
      stdouts.push(command.stdout);
      previous = command;
      if (scripts.confirm) {
        // A second command, so a second SSH connection made after the change: only that proves
        // the management path still works. Its triggers hold the apply's output (which names the
        // rollback it armed), so it runs again after every apply that armed one.
        previous = new remote.Command(
          `${commandName(name, scripts.concern)}-confirm`,
          { connection, create: run(scripts.confirm.create), delete: run(scripts.confirm.delete), triggers: [...triggers, command.stdout], addPreviousOutputInEnv: false },
          { parent: this, dependsOn: [command], deleteBeforeReplace: true },
        );
      }
    }
    this.applied = pulumi.all(stdouts).apply((all) => parseApplied(all.join("\n")));
    this.registerOutputs({ applied: this.applied });
  }
}
