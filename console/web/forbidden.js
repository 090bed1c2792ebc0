// The 403 page a staff account gets at /admin/ (docs/console.md, "Admin page"): its texts.
import { apply_strings } from "./client.js";

apply_strings();
