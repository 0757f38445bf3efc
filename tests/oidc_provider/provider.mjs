// A real OpenID Provider for Orosflow's sign-in tests: the certified `oidc-provider` package on
// loopback, with one confidential client, PKCE required, a minimal login form and test people
// whose ID tokens carry groups, amr and acr. Never for production: in-memory storage, keys
// generated at start.
//
//   node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI[,REDIRECT_URI...] POST_LOGOUT_URI[,...]
//
// Prints "ready <issuer>" on stdout once it listens.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirects, postLogout] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

// The people who can sign in here (username = password prefix, see the form below).
const PEOPLE = {
  anna: {
    sub: 'anna-0001', email: 'anna.mottagning@kommun.example.se', name: 'Anna Mottagning',
    groups: ['orosflow-mottagning-sodermalm'], amr: ['pwd', 'mfa'],
  },
  okand: {
    sub: 'okand-0002', email: 'okand@kommun.example.se', name: 'Okänd Person',
    groups: ['orosflow-mottagning-sodermalm'], amr: ['pwd', 'mfa'],
  },
  bertil: {
    sub: 'bertil-0003', email: 'bertil.granskare@kommun.example.se', name: 'Bertil Granskare',
    groups: ['orosflow-granskare', 'alla-anstallda'], amr: ['pwd', 'mfa'],
  },
  cecilia: {
    sub: 'cecilia-0004', email: 'cecilia.utanmfa@kommun.example.se', name: 'Cecilia Utan Mfa',
    groups: ['orosflow-mottagning-sodermalm'], amr: ['pwd'],
  },
};
const BY_SUB = Object.fromEntries(Object.values(PEOPLE).map((p) => [p.sub, p]));

const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirects.split(','),
    post_logout_redirect_uris: postLogout.split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  jwks: { keys: [{ ...jwk, kid: 'test-key-1', use: 'sig', alg: 'RS256' }] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  // Claims in the ID token itself, as Entra ID and Inera's IdP send them.
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub', 'acr', 'amr', 'auth_time', 'sid'],
    email: ['email', 'email_verified'],
    profile: ['name', 'groups'],
  },
  features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // A first-party client: consent is implied for whatever it asks.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
    grant.addOIDCClaims(['sub', 'email', 'email_verified', 'name', 'groups']);
    await grant.save();
    return grant;
  },
  async findAccount(ctx, sub) {
    const person = BY_SUB[sub];
    if (!person) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub, email: person.email, email_verified: true, name: person.name, groups: person.groups,
        };
      },
    };
  },
  ttl: { IdToken: 300, AccessToken: 300, AuthorizationCode: 60, Interaction: 600, Session: 3600 },
});

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function formBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// The login form: username and password "<username>-losen".
provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (ctx.method === 'POST' && match[2]) {
    const form = await formBody(ctx.req);
    const username = form.get('username') || '';
    const person = PEOPLE[username];
    if (!person || form.get('password') !== `${username}-losen`) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>Fel</title><p id="error">Fel användarnamn eller lösenord</p>`;
      return undefined;
    }
    ctx.respond = false;
    await provider.interactionFinished(ctx.req, ctx.res, {
      login: { accountId: person.sub, amr: person.amr, acr: 'urn:test:loa:2' },
    }, { mergeWithLastSubmission: false });
    return undefined;
  }
  ctx.type = 'html';
  ctx.body = `<!doctype html><html lang="sv"><head><title>Test-IdP: logga in</title></head><body>
<h1>Test-IdP</h1><p>Prompt: ${esc(details.prompt.name)}</p>
<form method="post" action="/interaction/${esc(details.uid)}/login">
<label>Användarnamn <input name="username" id="idp-username"></label>
<label>Lösenord <input name="password" id="idp-password" type="password"></label>
<button type="submit" id="idp-submit">Logga in hos IdP</button></form></body></html>`;
  return undefined;
});

provider.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
