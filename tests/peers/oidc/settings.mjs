// Reads the peer's settings from environment variables, overridable by command-line flags.
import { parseArgs } from 'node:util';

export const METADATA_KINDS = Object.freeze([
  'oauth-path-inserted', // RFC 8414 sec. 3.1: /.well-known/oauth-authorization-server{/issuer-path}
  'openid-path-inserted', // the same insertion applied to openid-configuration (MCP spec fallback)
  'openid-path-appended', // OpenID Connect Discovery 1.0 sec. 4: {issuer}/.well-known/openid-configuration
  'oauth-path-appended', // non-standard, but some clients try it; oidc-provider serves it natively
]);

const DCR_MODES = new Set(['anonymous', 'initial-access-token', 'disabled']);
const TOKEN_FORMATS = new Set(['jwt', 'opaque']);

export class SettingsError extends Error {}

function parseBoolean(name, raw, fallback) {
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no'].includes(raw.toLowerCase())) return false;
  throw new SettingsError(`${name} must be true or false`);
}

function parsePositiveInt(name, raw, fallback) {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new SettingsError(`${name} must be a positive integer`);
  }
  return value;
}

function parseList(raw) {
  if (raw === undefined || raw.trim() === '') return [];
  return raw.split(',').map((item) => item.trim()).filter(Boolean);
}

function normalizeIssuerPath(raw) {
  const path = (raw ?? '').trim().replace(/\/+$/, '');
  if (path === '') return '';
  if (!path.startsWith('/') || path.includes('?') || path.includes('#') || path.includes('//')) {
    throw new SettingsError('OIDC_PEER_ISSUER_PATH must look like /tenant-a (no query, no fragment)');
  }
  return path;
}

const FLAGS = {
  host: { type: 'string', env: 'OIDC_PEER_HOST' },
  port: { type: 'string', env: 'PORT' },
  'issuer-path': { type: 'string', env: 'OIDC_PEER_ISSUER_PATH' },
  dcr: { type: 'string', env: 'OIDC_PEER_DCR' },
  'rotate-refresh-tokens': { type: 'string', env: 'OIDC_PEER_ROTATE_REFRESH_TOKENS' },
  'rotate-registration-access-token': { type: 'string', env: 'OIDC_PEER_ROTATE_REGISTRATION_ACCESS_TOKEN' },
  'access-token-ttl': { type: 'string', env: 'OIDC_PEER_ACCESS_TOKEN_TTL' },
  'access-token-format': { type: 'string', env: 'OIDC_PEER_ACCESS_TOKEN_FORMAT' },
  metadata: { type: 'string', env: 'OIDC_PEER_METADATA' },
  resources: { type: 'string', env: 'OIDC_PEER_RESOURCES' },
};

/**
 * Returns the settings object. The initial access token is taken from the environment only
 * (OIDC_PEER_INITIAL_ACCESS_TOKEN): a command-line flag would show it in `ps` output.
 */
export function loadSettings(argv = process.argv.slice(2), env = process.env) {
  const options = Object.fromEntries(
    Object.entries(FLAGS).map(([flag, { type }]) => [flag, { type }]),
  );
  const { values } = parseArgs({ args: argv, options, strict: true });
  const raw = Object.fromEntries(
    Object.entries(FLAGS).map(([flag, { env: name }]) => [flag, values[flag] ?? env[name]]),
  );

  const dcr = raw.dcr || 'anonymous';
  if (!DCR_MODES.has(dcr)) {
    throw new SettingsError(`OIDC_PEER_DCR must be one of ${[...DCR_MODES].join(', ')}`);
  }
  const initialAccessToken = env.OIDC_PEER_INITIAL_ACCESS_TOKEN || undefined;
  if (dcr === 'initial-access-token' && !initialAccessToken) {
    throw new SettingsError('OIDC_PEER_DCR=initial-access-token needs OIDC_PEER_INITIAL_ACCESS_TOKEN');
  }

  const accessTokenFormat = raw['access-token-format'] || 'jwt';
  if (!TOKEN_FORMATS.has(accessTokenFormat)) {
    throw new SettingsError('OIDC_PEER_ACCESS_TOKEN_FORMAT must be jwt or opaque');
  }

  const metadata = raw.metadata === undefined ? [...METADATA_KINDS] : parseList(raw.metadata);
  const unknownKinds = metadata.filter((kind) => !METADATA_KINDS.includes(kind));
  if (unknownKinds.length) {
    throw new SettingsError(`OIDC_PEER_METADATA accepts ${METADATA_KINDS.join(', ')}`);
  }

  const port = raw.port === undefined || raw.port === '' ? 0 : Number(raw.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SettingsError('PORT must be an integer between 0 and 65535 (0 picks a free port)');
  }

  return Object.freeze({
    host: raw.host || '127.0.0.1',
    port,
    issuerPath: normalizeIssuerPath(raw['issuer-path']),
    dcr,
    initialAccessToken: dcr === 'initial-access-token' ? initialAccessToken : undefined,
    rotateRefreshTokens: parseBoolean('OIDC_PEER_ROTATE_REFRESH_TOKENS', raw['rotate-refresh-tokens'], false),
    rotateRegistrationAccessToken: parseBoolean(
      'OIDC_PEER_ROTATE_REGISTRATION_ACCESS_TOKEN',
      raw['rotate-registration-access-token'],
      true,
    ),
    accessTokenTTL: parsePositiveInt('OIDC_PEER_ACCESS_TOKEN_TTL', raw['access-token-ttl'], 3600),
    accessTokenFormat,
    metadata: new Set(metadata),
    // Empty means: accept any absolute http(s) URL as an RFC 8707 resource indicator.
    resources: new Set(parseList(raw.resources)),
  });
}
