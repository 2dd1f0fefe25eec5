// The console's views in nav order (the view contract: console.js). Add a line per view.
import keys from "./keys.js";
import changes from "./changes.js";
import leases from "./leases.js";
import claims from "./claims.js";
import conversations from "./conversations.js";

export default [
  keys,
  changes,
  leases,
  claims,
  conversations,
];
