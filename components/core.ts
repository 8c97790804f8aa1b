// Everything in components/ except the Pulumi component (host.ts): what tools and tests use that
// need no Pulumi (loading @pulumi/pulumi takes about a second).
export * from "./schema";
export * from "./model";
export * from "./validate";
export * from "./render";
export * from "./shell";
export * from "./stackfile";
export * from "./hooks";
export * from "./applied";
