// The console's views in nav order (the view contract: console.js). Add a line per view.
import keys from "./keys.js";

export default [
  keys,
];
