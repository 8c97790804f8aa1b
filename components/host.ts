// MptcpHost: one host's desired MPTCP state, applied over SSH. One remote.Command per concern
// the config sets (sysctl -> limits -> endpoints, chained with dependsOn); each command's
// `create` applies idempotently and its `delete` restores what the host had before.
import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import { HostModel } from "./model";
import { anchorName, commandName, Concern, renderAnchor, renderHost } from "./render";
import { wrapScript } from "./shell";

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
  /** stdout of each concern's last apply: the state the host reported after it (per concern). */
  public readonly applied: pulumi.Output<Partial<Record<Concern, string>>>;

  constructor(name: string, args: MptcpHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mptcp:index:Host", name, {}, opts);
    const host = { ...args.host, stack: `${pulumi.getProject()}/${pulumi.getStack()}` };
    if (host.ssh.insecureIgnoreHostKey && !host.ssh.hostKey) {
      pulumi.log.warn(`mptcp:hosts[${host.index}].ssh: insecureIgnoreHostKey is set: the host key of ${host.ssh.host} is not checked, so anyone on the path can impersonate it. Set ssh.hostKey.`, this);
    }
    const connection = connectionFor(host, args.privateKey);
    // A different target host must revert the old one and apply the new one (replace), not update.
    const triggers = [host.ssh.host, host.ssh.port, host.ssh.user];
    const applied: Partial<Record<Concern, pulumi.Output<string>>> = {};
    const wrap = (script: string) => wrapScript(script, { user: host.ssh.user, host: host.name });
    const concerns = renderHost(host);
    // The anchor: created first, deleted last; its delete reverts what of this entry is still on
    // the host without a command in the stack (an apply that committed there but failed here).
    let previous: pulumi.Resource | undefined;
    if (concerns.length > 0) {
      const anchor = renderAnchor(host);
      // No triggers: a changed ssh target updates it in place (its create changes nothing), so it
      // is never replaced, whose delete would revert the entry's concerns under their commands.
      previous = new remote.Command(
        anchorName(name),
        { connection, create: wrap(anchor.apply), delete: wrap(anchor.revert), addPreviousOutputInEnv: false },
        { parent: this, deleteBeforeReplace: true },
      );
    }
    for (const scripts of concerns) {
      const command = new remote.Command(
        commandName(name, scripts.concern),
        { connection, create: wrap(scripts.apply), delete: wrap(scripts.revert), triggers, addPreviousOutputInEnv: false },
        { parent: this, dependsOn: previous ? [previous] : [], deleteBeforeReplace: true },
      );
      applied[scripts.concern] = command.stdout;
      previous = command;
      if (scripts.confirm) {
        // A second command, so a second SSH connection made after the change: only that proves
        // the management path still works. Its triggers hold the apply's output (which names the
        // rollback it armed), so it runs again after every apply that armed one.
        previous = new remote.Command(
          `${commandName(name, scripts.concern)}-confirm`,
          { connection, create: wrap(scripts.confirm.create), delete: wrap(scripts.confirm.delete), triggers: [...triggers, command.stdout], addPreviousOutputInEnv: false },
          { parent: this, dependsOn: [command], deleteBeforeReplace: true },
        );
      }
    }
    this.applied = pulumi.output(applied);
    this.registerOutputs({ applied: this.applied });
  }
}
