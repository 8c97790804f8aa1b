// The package's entry (`import { MptcpHost, MptcpNetwork } from "mptcp-pulumi"`): the components,
// their args, and everything the tools use (components/core.ts: validation, predictions, the
// rendered scripts), which needs no Pulumi.
export * from "./core";
export * from "./args";
export { MptcpHost } from "./host";
export type { Connection } from "./host";
export * from "./network";
