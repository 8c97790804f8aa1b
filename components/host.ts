// MptcpHost: one host's desired MPTCP state, applied over SSH. One remote.Command per concern
// the config sets (sysctl -> limits -> endpoints, chained with dependsOn); each command's
// `create` applies idempotently and its `delete` restores what the host had before. The scripts
// themselves reach the host once, through one remote.CopyToRemote per host (components/stage.ts);
// a command's create and delete check and run their script there.
//
// Which commands a host gets follows from its args' plain values; the scripts' text from all of
// them, Inputs included (components/inputs.ts): every command is registered with values derived
// from the validated model, so none reaches the host before its args passed validation.
import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import { HostApplied, parseApplied } from "./applied";
import { MptcpHostArgs } from "./args";
import { checkNow, checkWhenKnown, hostPaths, reportUnknown, withPlaceholders } from "./inputs";
import { HostModel } from "./model";
import { anchorName, commandName, concernsOf, Concern, HOST_TYPE, isGuarded, LEGACY_HOST_TYPE, renderAnchor, renderHost } from "./render";
import { cleanupText, dataComments, runnerText, STAGE_ROOT, stageEntry, stageLocal, stageRemote } from "./stage";
import { ConfigValidationError, validateConfig } from "./validate";

export type { MptcpHostArgs } from "./args";

/** An SSH connection as the command provider takes it (its `connection` input). */
export interface Connection {
  host: string;
  port: number;
  user: string;
  hostKey?: string;
  privateKey?: string;
}

/** The SSH connection the command provider dials; the SDK stores it as a secret. */
export function connectionFor(host: HostModel, privateKey?: string): Connection {
  return {
    host: host.ssh.host,
    port: host.ssh.port,
    user: host.ssh.user,
    ...(host.ssh.hostKey ? { hostKey: host.ssh.hostKey } : {}),
    ...(privateKey ? { privateKey } : {}),
  };
}

/** A host an MptcpNetwork makes: validated by the network, with the other hosts and the links. */
export interface NetworkMember {
  /** The host's model with placeholders for values not known yet: which commands it gets. */
  now: HostModel;
  /** The host's model once every value of the network is known and the whole network passed validation. */
  model: pulumi.Output<HostModel>;
}

/** The hosts MptcpNetwork makes, by the args object it hands each one (not part of the public args). */
export const NETWORK_MEMBERS = new WeakMap<object, NetworkMember>();

/**
 * The model of a host made alone: its args validated now (with placeholders for values not known
 * yet: an error throws before anything is registered) and again when all are known.
 */
function standalone(name: string, args: MptcpHostArgs): { now: HostModel; check: (resource: pulumi.Resource) => pulumi.Output<HostModel> } {
  const where = `MptcpHost "${name}"'s args`;
  const { raw, deferred, errors } = withPlaceholders({ hosts: [{ ...args, name }] });
  const config = raw as { hosts: unknown };
  const now = checkNow(config, deferred, hostPaths, errors);
  if (now.length) throw new pulumi.RunError(new ConfigValidationError(now, where).message);
  const result = validateConfig(config);
  if (!result.ok) throw new Error(`${where}: validation disagrees with itself: ${JSON.stringify(result.errors)}`);
  return {
    now: result.model.hosts[0],
    check: (resource) => {
      reportUnknown(deferred, hostPaths, resource);
      return checkWhenKnown(config, deferred, hostPaths, where, resource).apply((m) => m.hosts[0]);
    },
  };
}

/**
 * One Linux host's MPTCP state (sysctls, `ip mptcp limits`, endpoints, interface hooks and source
 * routing, services made MPTCP), applied over SSH and restored on destroy to what the host had.
 */
export class MptcpHost extends pulumi.ComponentResource {
  /** What the host holds after each concern's last apply, as the applies reported it: sysctl values, limits, endpoints with resolved addresses and ids, hooks and routing, services, NetworkManager's part. */
  public readonly applied: pulumi.Output<HostApplied>;

  constructor(name: string, args: MptcpHostArgs, opts?: pulumi.ComponentResourceOptions) {
    const member = NETWORK_MEMBERS.get(args);
    const alone = member ? undefined : standalone(name, args);
    // Stacks this project's program made before MptcpNetwork registered the hosts at the top level
    // as mptcp:index:Host; the alias (inherited by the commands) makes the engine take those for
    // these, so upgrading replaces nothing (an alias no state matches is ignored).
    const aliases = [...(opts?.aliases ?? []), { type: LEGACY_HOST_TYPE, parent: pulumi.rootStackResource }];
    super(HOST_TYPE, name, {}, { ...opts, aliases });
    const now = member?.now ?? alone!.now;
    const stack = `${pulumi.getProject()}/${pulumi.getStack()}`;
    const model = (member?.model ?? alone!.check(this)).apply((m): HostModel => ({ ...m, stack }));
    // once the values are known (a placeholder would name no real host)
    model.apply((m) => {
      if (m.ssh.insecureIgnoreHostKey && !m.ssh.hostKey) {
        void pulumi.log.warn(`${name}: ssh.insecureIgnoreHostKey is set: the host key of ${m.ssh.host} is not checked, so anyone on the path can impersonate it. Set ssh.hostKey.`, this);
      }
    });
    const privateKey = args.ssh?.privateKey === undefined ? undefined : pulumi.secret(args.ssh.privateKey);
    const connection = pulumi.all([model, privateKey]).apply(([m, key]) => connectionFor(m, key));
    // A different target host must revert the old one and apply the new one (replace), not update.
    const triggers = [model.apply((m) => m.ssh.host), model.apply((m) => m.ssh.port), model.apply((m) => m.ssh.user)];
    const concerns = concernsOf(now);
    const rendered = model.apply((m) => {
      const scripts = renderHost(m);
      const got = scripts.map((s) => s.concern).join(" ");
      if (got !== concerns.join(" ")) throw new Error(`${name}: the host's concerns changed once its inputs were known (${concerns.join(" ")} -> ${got})`);
      return { host: m, anchor: renderAnchor(m), concerns: scripts };
    });
    const entry = stageEntry(stack, name);
    const remotePath = stageRemote(entry);
    const copyName = `${name}-scripts`;
    // the title line without where it was generated from (the copied script says it)
    const title = (script: string) => script.slice(0, script.indexOf("\n")).replace(/, generated from .*$/, "");
    // create: the title and the data the script carries (what `pulumi preview --diff` shows of a
    // change); delete: the title
    const run = (pick: (r: pulumi.Unwrap<typeof rendered>) => string, data = false) =>
      rendered.apply((r) => {
        const script = pick(r);
        return runnerText(script, { user: r.host.ssh.user, host: name, remote: remotePath, copy: copyName, about: [title(script), ...(data ? dataComments(script) : [])] });
      });
    const stdouts: pulumi.Output<string>[] = [];
    let previous: pulumi.Resource | undefined;
    if (concerns.length > 0) {
      // A new target gets the files too (the provider's update copies only when the source's hash
      // or remotePath changed: copyController.go at v1.2.1), hence the triggers (a replace).
      const source = rendered.apply((r) => {
        const scripts = [r.anchor.apply, r.anchor.revert, ...r.concerns.flatMap((s) => [s.apply, s.revert, ...(s.confirm ? [s.confirm.create, s.confirm.delete] : [])])];
        return new pulumi.asset.FileArchive(stageLocal(entry, scripts));
      });
      previous = new remote.CopyToRemote(copyName, { connection, source, remotePath: STAGE_ROOT, triggers }, { parent: this });
      // Removes the copied scripts when deleted: after every command that runs one (they all
      // depend on it), and also when the first up failed at the host. A new target (the copy's
      // triggers: another user's home, another machine) or directory (a renamed stack) replaces
      // it create-first (no deleteBeforeReplace), so the old directory is removed at the end of
      // the update, through the old connection, after the old commands' deletes ran from it.
      previous = new remote.Command(`${copyName}-cleanup`, { connection, delete: cleanupText(remotePath, name), triggers, addPreviousOutputInEnv: false }, { parent: this, dependsOn: [previous] });
      // The anchor: created first, deleted last; its delete reverts what of this entry is still on
      // the host without a command in the stack (an apply that committed there but failed here).
      // No triggers: a changed ssh target updates it in place (its create changes nothing), so it
      // is never replaced, whose delete would revert the entry's concerns under their commands.
      previous = new remote.Command(
        anchorName(name),
        { connection, create: run((r) => r.anchor.apply), delete: run((r) => r.anchor.revert), addPreviousOutputInEnv: false },
        { parent: this, dependsOn: [previous], deleteBeforeReplace: true },
      );
    }
    concerns.forEach((concern: Concern, i) => {
      const command: remote.Command = new remote.Command(
        commandName(name, concern),
        { connection, create: run((r) => r.concerns[i].apply, true), delete: run((r) => r.concerns[i].revert), triggers, addPreviousOutputInEnv: false },
        { parent: this, dependsOn: previous ? [previous] : [], deleteBeforeReplace: true },
      );
      stdouts.push(command.stdout);
      previous = command;
      if (isGuarded(now, concern)) {
        // A second command, so a second SSH connection made after the change: only that proves
        // the management path still works. Its triggers hold the apply's output (which names the
        // rollback it armed), so it runs again after every apply that armed one.
        previous = new remote.Command(
          `${commandName(name, concern)}-confirm`,
          {
            connection,
            create: run((r) => r.concerns[i].confirm!.create),
            delete: run((r) => r.concerns[i].confirm!.delete),
            triggers: [...triggers, command.stdout],
            addPreviousOutputInEnv: false,
          },
          { parent: this, dependsOn: [command], deleteBeforeReplace: true },
        );
      }
    });
    this.applied = pulumi.all(stdouts).apply((all) => parseApplied(all.join("\n")));
    this.registerOutputs({ applied: this.applied });
  }
}
