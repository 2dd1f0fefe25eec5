// The console's views in nav order (the view contract: console.js). Add a line per view.
import keys from "./keys.js";
import changes from "./changes.js";
import leases from "./leases.js";
import claims from "./claims.js";
import conversations from "./conversations.js";
import memory from "./memory.js";
import sessions from "./sessions.js";
import health from "./health.js";

export default [
  keys,
  changes,
  leases,
  claims,
  conversations,
  memory,
  sessions,
  health,
];
