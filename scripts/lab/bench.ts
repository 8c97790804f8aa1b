export async function runBench(_: unknown) { throw new Error("todo"); }
