// TEST CODE. SSH servers in the test process (ssh2's Server), hostile or plain, on loopback, for
// the CLIs' deadlines and connection bound (test/cli-ssh.test.ts). Every server accepts any
// login; what it does then is its mode.
import { createServer, Server as NetServer, Socket } from "node:net";
import { Server, utils } from "ssh2";

/**
 * ok: each exec answers with `output` and exit 0.
 * nosession: after login, never answers a channel open (an sshd that stalls after login).
 * noexec: opens the session channel, never answers the exec request.
 * silent: accepts the exec, then never sends output or an exit.
 * nobanner: accepts TCP, never sends the SSH banner (not an SSH server at all).
 * fail: each exec answers with `output` and exit 3.
 * noexit: each exec answers with `output`, then closes the channel without an exit status.
 * signal: each exec answers with `output`, then an exit signal (TERM) instead of a status.
 */
export type Mode = "ok" | "nosession" | "noexec" | "silent" | "nobanner" | "fail" | "noexit" | "signal";

export interface FakeSshd {
  /** The ports, one per listener. */
  ports: number[];
  /** The host key line for ssh.hostKey. */
  hostKey: string;
  /** Logins and exec requests seen; connections open now and at most at once. */
  stats: { logins: number; execs: number; open: number; maxOpen: number };
  close(): Promise<void>;
}

const hostKeyPair = utils.generateKeyPairSync("ed25519");
/** A client key for --identity (the servers accept any). */
export const clientKey = utils.generateKeyPairSync("ed25519").private;

/** `listeners` servers of one mode on 127.0.0.1 (distinct ports: the config refuses two entries with one SSH target). */
export async function startSshd(mode: Mode, listeners = 1, output = ""): Promise<FakeSshd> {
  const stats = { logins: 0, execs: 0, open: 0, maxOpen: 0 };
  const sockets = new Set<Socket>();
  const track = (sock: Socket) => {
    sockets.add(sock);
    stats.maxOpen = Math.max(stats.maxOpen, ++stats.open);
    sock.on("close", () => {
      sockets.delete(sock);
      stats.open--;
    });
  };
  const servers: (NetServer | Server)[] = [];
  const ports: number[] = [];
  for (let i = 0; i < listeners; i++) {
    let server: NetServer | Server;
    if (mode === "nobanner") {
      server = createServer((sock) => track(sock));
    } else {
      server = new Server({ hostKeys: [hostKeyPair.private] }, (client) => {
        client.on("error", () => undefined);
        client.on("authentication", (ctx) => ctx.accept());
        client.on("ready", () => {
          stats.logins++;
          client.on("session", (accept) => {
            if (mode === "nosession") return;
            const session = accept();
            session.on("exec", (acceptExec) => {
              stats.execs++;
              if (mode === "noexec") return;
              const ch = acceptExec();
              if (mode === "silent") return;
              ch.write(output);
              if (mode === "signal") ch.exit("TERM");
              else if (mode !== "noexit") ch.exit(mode === "fail" ? 3 : 0);
              ch.end();
            });
          });
        });
      });
      // the TCP connections, under ssh2's own "connection" event (which hands over its client)
      (server as unknown as { _srv: NetServer })._srv.on("connection", (sock: Socket) => track(sock));
    }
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    ports.push((server.address() as { port: number }).port);
    servers.push(server);
  }
  return {
    ports,
    hostKey: hostKeyPair.public.split(" ").slice(0, 2).join(" "),
    stats,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    },
  };
}
