// Two laptops whose SSH addresses come from other resources' outputs instead of a stack file: a
// local.Command per laptop looks its address up (DNS, through getent), as a cloud VM's public IP
// output or an inventory lookup would be used. MptcpNetwork checks the two hosts against each
// other once the addresses are known (an update), before any command runs on either; a preview
// names what it could not check yet.
//
//   pulumi config set server server.lan       # names the lookups resolve
//   pulumi config set client client.lan
//   pulumi config set serverHostKey "$(ssh-keyscan -t ed25519 server.lan | cut -d' ' -f2-)"
//   pulumi config set clientHostKey "$(ssh-keyscan -t ed25519 client.lan | cut -d' ' -f2-)"
//   pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519
//   pulumi config set wlan wlan0              # the interface whose address the server announces
//   pulumi up
import { local } from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { MptcpNetwork } from "mptcp-pulumi";

const config = new pulumi.Config();
const privateKey = config.requireSecret("sshPrivateKey");
const wlan = config.get("wlan") ?? "wlan0";

/** A machine's IPv4 address, as another resource outputs it. */
function addressOf(name: string): pulumi.Output<string> {
  if (!/^[A-Za-z0-9.-]+$/.test(name)) throw new pulumi.RunError(`config: ${name} is not a host name`);
  return new local.Command(`${name}-address`, { create: `getent ahostsv4 ${name} | awk 'NR == 1 { print $1 }'` }).stdout;
}

const network = new MptcpNetwork("laptops", {
  hosts: [
    {
      name: "server",
      ssh: { host: addressOf(config.require("server")), hostKey: config.require("serverHostKey"), privateKey },
      sysctl: { enabled: true },
      // one additional subflow per connection: to the address the server announces
      limits: { subflows: 1, addAddrAccepted: 0 },
      endpoints: [{ interface: wlan, flags: ["signal"] }],
    },
    {
      name: "client",
      ssh: { host: addressOf(config.require("client")), hostKey: config.require("clientHostKey"), privateKey },
      sysctl: { enabled: true },
      limits: { subflows: 1, addAddrAccepted: 1 },
    },
  ],
  // the address the client dials the server on: its SSH address unless set
  links: [{ client: "client", server: "server", ...(config.get("dial") ? { address: config.get("dial") } : {}) }],
});

/** What each laptop holds after the update. */
export const hosts = network.hosts;
/** The joins and subflows each connection from client to server should get. */
export const links = network.links;
