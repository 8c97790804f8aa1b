export * from "./schema";
export * from "./model";
export * from "./validate";
export * from "./render";
export * from "./shell";
export * from "./host";
export * from "./stackfile";
export * from "./hooks";
