// Shared by the launchers: argument parsing, the ready line and the shutdown rules.
// Every launcher binds 127.0.0.1 only, prints one JSON line when it accepts requests, and
// exits on SIGINT/SIGTERM or when its parent closes stdin (so a crashed parent leaves
// nothing running).

export function parseArgs(argv, defaults) {
  const opts = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    const [key, inline] = arg.slice(2).split("=", 2);
    if (!(key in opts)) throw new Error(`unknown flag --${key} (known: ${Object.keys(opts).join(", ")})`);
    if (typeof opts[key] === "boolean" && inline === undefined) { opts[key] = true; continue; }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`--${key} needs a value`);
    opts[key] = typeof opts[key] === "number" ? Number(value) : value;
    if (typeof defaults[key] === "number" && !Number.isInteger(opts[key])) throw new Error(`--${key} must be an integer`);
  }
  return opts;
}

export function ready(fields) {
  process.stdout.write(JSON.stringify({ ready: true, ...fields }) + "\n");
}

export function stopOn(close) {
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try { await close(); } catch { /* exiting anyway */ }
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  if (process.env.SLACKRELAY_EXIT_ON_STDIN_CLOSE === "1") {
    process.stdin.on("end", stop);
    process.stdin.on("error", stop);
    process.stdin.resume();
  }
}

export function fail(err) {
  process.stderr.write(`${process.argv[1]}: ${err.message}\n`);
  process.exit(2);
}
