/**
 * admin: the console and API for the people who run the gateway (issue 18), served by the admin
 * role on admin.listen. It owns the permission matrix (permissions.ts, checked in one place: the
 * guard of app.ts), sign-in and sessions, the API's route groups (api/) and the console's pages.
 *
 * Untrusted input: every request, from the inside network (an operator's browser may be driven by
 * a hostile page: CSRF, cross-site refusals, body limits). Secrets: the role holds the KEK (it
 * imports and exports keys); passwords, TOTP codes and exported keys never reach a log or the
 * audit trail.
 */
export { buildAdminApp, refusal, ADMIN_CSP, type AdminAccounts, type AdminAccountInfo, type AdminAppOptions, type AdminSession, type AdminWeb, type LoginCheck, type SignInResult } from './app.js';
export { startAdmin, AdminError, type AdminServer } from './server.js';
export { PERMISSIONS, ROLE_PERMISSIONS, allowed, isChange, permissionTable, rolesGranting, type Permission } from './permissions.js';
export { ApiError, ok, type AdminCaller, type AdminContext, type ApiRequest, type ApiResult, type ApiRoute, type AuditChange, type JsonSchema, type RoleStatus, type SupervisorLink } from './routes.js';
export { API_ROUTES } from './api/index.js';
export { gatewayMetrics, watchedCertificates, MAX_CERTIFICATE_SERIES, type GatewayMetricsOptions, type WatchedCertificate } from './metrics.js';
export { CarriedCounts, type ProcessSnapshot } from './metrics-carry.js';
export { HourlyCounts, processedByMethod, type HourlyTable, type HourRow } from './hourly.js';
