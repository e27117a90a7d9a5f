// Starts GOV.UK Frontend's components (a module, so the strict CSP allows it as 'self').
import { initAll } from "/static/govuk/govuk-frontend.min.js";
initAll();
