// Builds the oidc-provider instance (configuration from settings) and counts what it did.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

// Static scopes are what a client may register in its `scope` metadata and what discovery
// advertises; the MCP ones are also the scopes of every accepted resource server.
const OIDC_SCOPES = ['openid', 'offline_access'];
const MCP_SCOPES = ['mcp:tools', 'mcp:resources'];

function signingKeys() {
  // A fresh key per process: tokens from an earlier peer run must not verify against this one.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return [{ ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' }];
}

function isAcceptedResource(settings, indicator) {
  if (settings.resources.size) return settings.resources.has(indicator);
  const parsed = URL.parse(indicator);
  return parsed !== null && ['http:', 'https:'].includes(parsed.protocol) && parsed.hash === '';
}

function configuration(settings) {
  const dcrEnabled = settings.dcr !== 'disabled';
  return {
    jwks: { keys: signingKeys() },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    responseTypes: ['code'],
    scopes: [...OIDC_SCOPES, ...MCP_SCOPES],
    claims: { openid: ['sub'] },
    // PKCE on every authorization request, confidential clients included. oidc-provider v9
    // implements only S256, so `plain` is refused and discovery advertises ["S256"].
    pkce: { required: () => true },
    // The devInteractions login page accepts any login/password; the login becomes the `sub`.
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    clientBasedCORS: () => false,
    // Refresh tokens for every client allowed the refresh_token grant, with or without
    // offline_access (the default issues them only for offline_access), and not bound to the
    // browser session, so a token store can refresh long after the login page was closed.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    rotateRefreshToken: () => settings.rotateRefreshTokens,
    ttl: {
      AccessToken: settings.accessTokenTTL,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 24 * 3600,
      Interaction: 600,
      Session: 24 * 3600,
      Grant: 24 * 3600,
    },
    features: {
      devInteractions: { enabled: true },
      // A plain-http loopback redirect_uri such as http://127.0.0.1:PORT/oauth/callback needs no
      // extra setting here: oidc-provider refuses http only for `web` clients using the implicit
      // flow (disabled by responseTypes above), and for `native` clients it allows http only on
      // loopback hosts, which is exactly what tests use.
      registration: {
        enabled: dcrEnabled,
        initialAccessToken: settings.dcr === 'initial-access-token' ? settings.initialAccessToken : false,
      },
      registrationManagement: {
        enabled: dcrEnabled,
        rotateRegistrationAccessToken: settings.rotateRegistrationAccessToken,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        // The token request may omit `resource`; the token is then for the resource granted at
        // the authorization step instead of the userinfo endpoint.
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (!isAcceptedResource(settings, indicator)) throw new errors.InvalidTarget();
          return {
            scope: MCP_SCOPES.join(' '),
            audience: indicator,
            accessTokenTTL: settings.accessTokenTTL,
            accessTokenFormat: settings.accessTokenFormat,
          };
        },
      },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
  };
}

function bump(counters, key) {
  counters[key] = (counters[key] ?? 0) + 1;
}

/** Counters a test can read through the admin endpoint; never holds a token or secret. */
export function subscribeStats(provider) {
  const stats = {
    registrations: { created: 0, updated: 0, deleted: 0 },
    registration_errors: {},
    authorizations: 0,
    authorization_errors: {},
    token_grants: {},
    token_errors: {},
    refresh_token_reuse: 0,
    grants_revoked: 0,
  };
  provider.on('registration_create.success', () => { stats.registrations.created += 1; });
  provider.on('registration_update.success', () => { stats.registrations.updated += 1; });
  provider.on('registration_delete.success', () => { stats.registrations.deleted += 1; });
  for (const event of ['registration_create', 'registration_read', 'registration_update', 'registration_delete']) {
    provider.on(`${event}.error`, (_ctx, err) => { bump(stats.registration_errors, `${event}:${err.error}`); });
  }
  provider.on('authorization.success', () => { stats.authorizations += 1; });
  provider.on('authorization.error', (_ctx, err) => { bump(stats.authorization_errors, err.error); });
  provider.on('grant.success', (ctx) => { bump(stats.token_grants, ctx.oidc.params.grant_type); });
  provider.on('grant.error', (ctx, err) => {
    const grantType = ctx.oidc?.params?.grant_type ?? 'unknown';
    stats.token_errors[grantType] ??= {};
    bump(stats.token_errors[grantType], err.error);
    if (err.error_detail === 'refresh token already used') stats.refresh_token_reuse += 1;
  });
  provider.on('grant.revoked', () => { stats.grants_revoked += 1; });
  return stats;
}

export function buildProvider(settings, issuer) {
  return new Provider(issuer, configuration(settings));
}
