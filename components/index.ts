export * from "./core";
export * from "./host";
