// The console's views in nav order (the view contract: console.js). Add a line per view.
import keys from "./keys.js";
import changes from "./changes.js";
import leases from "./leases.js";

export default [
  keys,
  changes,
  leases,
];
