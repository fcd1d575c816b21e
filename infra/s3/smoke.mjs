#!/usr/bin/env node
// Smoke test for the S3 started by ceph-start.sh: SigV4 by hand with node:crypto
// (no SDK), so it runs anywhere Node >= 20 does.
//   eval "$(infra/s3/ceph-start.sh)" && node infra/s3/smoke.mjs
// Checks: bucket create, PUT/GET/DELETE object (header-signed), a wrong
// signature and an unknown key are refused (403), a presigned GET works, and
// a tampered or expired presigned URL is refused (403).
import { createHash, createHmac, randomBytes } from 'node:crypto';

const endpoint = new URL(process.env.S3_ENDPOINT ?? 'http://127.0.0.1:7480');
const region = process.env.S3_REGION ?? 'us-east-1';
const accessKey = process.env.S3_ACCESS_KEY_ID ?? 'hypencoder-test';
const secretKey = process.env.S3_SECRET_ACCESS_KEY ?? 'hypencoder-test-secret';

const sha256 = (d) => createHash('sha256').update(d).digest('hex');
const hmac = (k, d) => createHmac('sha256', k).update(d).digest();
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const amzDate = (d) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
const signingKey = (secret, day) =>
  hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), 's3'), 'aws4_request');
const canonicalQuery = (q) =>
  [...q].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
const canonicalPath = (p) => p.split('/').map(enc).join('/');

function signHeaders(method, path, body = '', { secret = secretKey, key = accessKey, now = new Date() } = {}) {
  const t = amzDate(now), day = t.slice(0, 8);
  const payloadHash = sha256(body);
  const headers = { host: endpoint.host, 'x-amz-content-sha256': payloadHash, 'x-amz-date': t };
  const names = Object.keys(headers).sort();
  const creq = [method, canonicalPath(path), '', names.map((n) => `${n}:${headers[n]}\n`).join(''), names.join(';'), payloadHash].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const sts = ['AWS4-HMAC-SHA256', t, scope, sha256(creq)].join('\n');
  const sig = hmac(signingKey(secret, day), sts).toString('hex');
  return { ...headers, authorization: `AWS4-HMAC-SHA256 Credential=${key}/${scope}, SignedHeaders=${names.join(';')}, Signature=${sig}` };
}

function presign(method, path, expires, now = new Date()) {
  const t = amzDate(now), day = t.slice(0, 8);
  const scope = `${day}/${region}/s3/aws4_request`;
  const q = new Map([
    ['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'], ['X-Amz-Credential', `${accessKey}/${scope}`],
    ['X-Amz-Date', t], ['X-Amz-Expires', String(expires)], ['X-Amz-SignedHeaders', 'host'],
  ]);
  const creq = [method, canonicalPath(path), canonicalQuery(q), `host:${endpoint.host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const sts = ['AWS4-HMAC-SHA256', t, scope, sha256(creq)].join('\n');
  q.set('X-Amz-Signature', hmac(signingKey(secretKey, day), sts).toString('hex'));
  return `${endpoint.origin}${canonicalPath(path)}?${canonicalQuery(q)}`;
}

async function req(method, path, body, opts) {
  const res = await fetch(new URL(path, endpoint), { method, headers: signHeaders(method, path, body ?? '', opts), body });
  return { status: res.status, text: await res.text() };
}
const code = (text) => /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? '';

let passed = 0, failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}  [${detail}]`);
}

const bucket = `smoke-${randomBytes(4).toString('hex')}`;
const key = 'dir/hello world.txt';
const body = `hello from smoke.mjs ${new Date().toISOString()}\n`;
const objPath = `/${bucket}/${key}`;

let r = await req('PUT', `/${bucket}`);
check('create bucket (SigV4)', r.status === 200, `${r.status} ${code(r.text)}`);
r = await req('PUT', objPath, body);
check('PUT object (SigV4)', r.status === 200, `${r.status} ${code(r.text)}`);
r = await req('GET', objPath);
check('GET object returns the same bytes', r.status === 200 && r.text === body, `${r.status} ${JSON.stringify(r.text.slice(0, 40))}`);

r = await req('GET', objPath, undefined, { secret: `${secretKey}x` });
check('wrong secret -> 403 SignatureDoesNotMatch', r.status === 403 && code(r.text) === 'SignatureDoesNotMatch', `${r.status} ${code(r.text)}`);
r = await req('GET', objPath, undefined, { key: 'no-such-key' });
check('unknown access key -> 403 InvalidAccessKeyId', r.status === 403 && code(r.text) === 'InvalidAccessKeyId', `${r.status} ${code(r.text)}`);
r = await req('GET', objPath, undefined, { now: new Date(Date.now() - 60 * 60 * 1000) });
check('request dated 1h ago -> 403 RequestTimeTooSkewed', r.status === 403 && code(r.text) === 'RequestTimeTooSkewed', `${r.status} ${code(r.text)}`);
{
  const res = await fetch(new URL(objPath, endpoint));
  check('anonymous GET of private object -> 403', res.status === 403, `${res.status}`);
}

const url = presign('GET', objPath, 300);
let res = await fetch(url);
check('presigned GET -> 200 and body', res.status === 200 && (await res.text()) === body, `${res.status}`);
const sig = new URL(url).searchParams.get('X-Amz-Signature');
const flipped = sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0');
res = await fetch(url.replace(sig, flipped));
let t = await res.text();
check('tampered signature -> 403 SignatureDoesNotMatch', res.status === 403 && code(t) === 'SignatureDoesNotMatch', `${res.status} ${code(t)}`);
res = await fetch(url.replace('X-Amz-Expires=300', 'X-Amz-Expires=3000'));
t = await res.text();
check('tampered expiry -> 403 SignatureDoesNotMatch', res.status === 403 && code(t) === 'SignatureDoesNotMatch', `${res.status} ${code(t)}`);
res = await fetch(url.replace(canonicalPath(key), 'dir/other.txt'));
t = await res.text();
check('tampered path -> 403', res.status === 403, `${res.status} ${code(t)}`);
res = await fetch(presign('GET', objPath, 60, new Date(Date.now() - 10 * 60 * 1000)));
t = await res.text();
check('expired presigned URL (signed 10 min ago, 60 s) -> 403', res.status === 403, `${res.status} ${code(t)}`);

r = await req('DELETE', objPath);
check('DELETE object', r.status === 204, `${r.status} ${code(r.text)}`);
r = await req('DELETE', `/${bucket}`);
check('DELETE bucket', r.status === 204, `${r.status} ${code(r.text)}`);

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
