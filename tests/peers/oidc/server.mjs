// Test-only OAuth 2.0 authorization server: oidc-provider mounted under an issuer path, plus
// RFC 8414 path-inserted metadata routes and a small admin API. Never run this in production.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

import { buildProvider, subscribeStats } from './provider.mjs';
import { loadSettings, SettingsError } from './settings.mjs';

// stdout carries exactly one line, `READY <issuer>`, for the process that started us; the
// library's notices (console.info) and our request log go to stderr instead.
console.info = console.error;
console.log = console.error;

const METADATA_DOCUMENTS = {
  'oauth-authorization-server': { inserted: 'oauth-path-inserted', appended: 'oauth-path-appended' },
  'openid-configuration': { inserted: 'openid-path-inserted', appended: 'openid-path-appended' },
};

function sendJson(res, status, body) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
  });
  res.end(payload);
}

/** Client metadata as stored, with the secret replaced by its SHA-256 so tests can compare it. */
function redactedClient(metadata) {
  const { client_secret: secret, ...rest } = metadata;
  if (typeof secret === 'string') {
    rest.client_secret_sha256 = createHash('sha256').update(secret).digest('hex');
  }
  return rest;
}

async function handleAdmin(ctx, req, res, path) {
  if (req.method !== 'GET') return sendJson(res, 405, { error: 'method_not_allowed' });
  if (path === '/__admin/ready') return sendJson(res, 200, { status: 'ready', issuer: ctx.issuer });
  if (path === '/__admin/stats') return sendJson(res, 200, ctx.stats);
  const prefix = '/__admin/clients/';
  if (path.startsWith(prefix) && path.length > prefix.length) {
    const clientId = decodeURIComponent(path.slice(prefix.length));
    // Read the adapter, not Client.find: the latter may answer from a cache after a delete.
    const stored = await ctx.provider.Client.adapter.find(clientId);
    if (!stored) return sendJson(res, 404, { error: 'client_not_found' });
    return sendJson(res, 200, redactedClient(stored));
  }
  return sendJson(res, 404, { error: 'not_found' });
}

/** Maps a request path to the provider-relative URL to serve, or undefined for 404. */
function providerTarget(settings, path, search) {
  const { issuerPath, metadata } = settings;
  for (const [name, kinds] of Object.entries(METADATA_DOCUMENTS)) {
    const inserted = `/.well-known/${name}${issuerPath}`;
    const appended = `${issuerPath}/.well-known/${name}`;
    if (inserted === appended && path === inserted) {
      // Root issuer: both spellings are the same URL; serve it if either kind is enabled.
      const on = metadata.has(kinds.inserted) || metadata.has(kinds.appended);
      return on ? `/.well-known/${name}${search}` : undefined;
    }
    if (path === inserted) return metadata.has(kinds.inserted) ? `/.well-known/${name}${search}` : undefined;
    if (path === appended && !metadata.has(kinds.appended)) return undefined;
  }
  if (issuerPath === '') return `${path}${search}`;
  if (path === issuerPath || path.startsWith(`${issuerPath}/`)) {
    return `${path.slice(issuerPath.length) || '/'}${search}`;
  }
  return undefined;
}

function requestHandler(ctx) {
  const providerCallback = ctx.provider.callback();
  return (req, res) => {
    const url = new URL(req.url, 'http://peer.invalid');
    // Log the path only: query strings carry codes, states and PKCE challenges.
    res.on('finish', () => console.error(`${req.method} ${url.pathname} ${res.statusCode}`));
    if (url.pathname.startsWith('/__admin/')) {
      handleAdmin(ctx, req, res, url.pathname).catch((err) => {
        console.error(`admin error: ${err.name}`);
        sendJson(res, 500, { error: 'server_error' });
      });
      return;
    }
    const target = providerTarget(ctx.settings, url.pathname, url.search);
    if (target === undefined) return sendJson(res, 404, { error: 'not_found' });
    // oidc-provider derives its mount path from originalUrl minus url (the Express convention),
    // so every URL it generates keeps the issuer path, including for path-inserted metadata.
    req.originalUrl = `${ctx.settings.issuerPath}${target}`;
    req.url = target;
    providerCallback(req, res);
  };
}

function main() {
  let settings;
  try {
    settings = loadSettings();
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    console.error(`oidc peer: ${err.message}`);
    process.exit(2);
  }

  const server = createServer();
  server.on('error', (err) => {
    const reason = err.code === 'EADDRINUSE' ? 'address already in use' : err.code ?? err.name;
    console.error(`oidc peer: cannot listen on ${settings.host}:${settings.port}: ${reason}`);
    process.exit(3);
  });
  // Listen first, then build the issuer from the bound port: with PORT=0 there is no race
  // between picking a free port and binding it.
  server.listen(settings.port, settings.host, () => {
    const { port } = server.address();
    const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
    const issuer = `http://${host}:${port}${settings.issuerPath}`;
    const provider = buildProvider(settings, issuer);
    provider.on('server_error', (_ctx, err) => console.error(`server_error: ${err.name}: ${err.message}`));
    const ctx = { settings, issuer, provider, stats: subscribeStats(provider) };
    server.on('request', requestHandler(ctx));
    process.stdout.write(`READY ${issuer}\n`);
  });

  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
