/*
 * A small Toto client for the browser, written from Toto 1.0.12's protocol
 * (docs: fact sheet 7.6), for tests/test_browser.py.
 *
 * Requests are JSON POSTs to <base>/<method>.  A session travels in the
 * x-toto-session-id header; with HMAC on, a request carries
 *     x-toto-hmac: base64(HMAC-SHA1(key, verb + uri + body))
 * and an answer that has a session carries
 *     x-toto-hmac: base64(HMAC-SHA1(key, session_id + body bytes)).
 * HMAC-SHA1 comes from WebCrypto (crypto.subtle), which needs a secure
 * context: http://127.0.0.1 is one.
 *
 *     const client = new TotoClient('http://127.0.0.1:8888/api');
 *     await client.call('account.login', {user_id: 'al', password: 'pw'});
 *     const answer = await client.call('whoami', {});   // signed, checked
 */
'use strict';

const encoder = new TextEncoder();

function toBase64(buffer) {
  let text = '';
  new Uint8Array(buffer).forEach(function (byte) { text += String.fromCharCode(byte); });
  return btoa(text);
}

function joinBytes(first, second) {
  const joined = new Uint8Array(first.length + second.length);
  joined.set(first, 0);
  joined.set(second, first.length);
  return joined;
}

async function hmacSha1(key, bytes) {
  const cryptoKey = await crypto.subtle.importKey(
    'raw', encoder.encode(key), {name: 'HMAC', hash: 'SHA-1'}, false, ['sign']);
  return toBase64(await crypto.subtle.sign('HMAC', cryptoKey, bytes));
}

class TotoClient {
  constructor(base) {
    this.base = base.replace(/\/$/, '');
    this.sessionId = null;
    this.key = null;
  }

  /* The path part of a URL, as the server sees request.uri. */
  uriOf(url) {
    const parsed = new URL(url, location.href);
    return parsed.pathname + parsed.search;
  }

  /*
   * Call `method` with `parameters`.  Options: `sign` (default: when a key is
   * known), `signature` (send this header instead: a wrong one), `credentials`
   * (fetch's).  Resolves to {status, body (parsed), text, hmac: 'valid' |
   * 'invalid' | 'absent' | 'no key'}; a login or create answer's session and
   * key are kept for later calls.
   */
  async call(method, parameters, options) {
    options = options || {};
    const url = this.base + '/' + method;
    const body = JSON.stringify({parameters: parameters || {}});
    const headers = {'content-type': 'application/json'};
    if (this.sessionId) {
      headers['x-toto-session-id'] = this.sessionId;
    }
    const sign = options.sign === undefined ? Boolean(this.key) : options.sign;
    if (options.signature) {
      headers['x-toto-hmac'] = options.signature;
    } else if (sign) {
      headers['x-toto-hmac'] = await hmacSha1(
        this.key, encoder.encode('POST' + this.uriOf(url) + body));
    }
    const response = await fetch(url, {method: 'POST', headers: headers, body: body,
                                       credentials: options.credentials || 'omit'});
    const bytes = new Uint8Array(await response.arrayBuffer());
    const text = new TextDecoder().decode(bytes);
    let parsed = null;
    try { parsed = JSON.parse(text); } catch (error) { parsed = null; }
    const result = parsed && parsed.result;
    if (result && result.session_id && result.key) {
      this.sessionId = result.session_id;
      this.key = result.key;
    }
    return {status: response.status, body: parsed, text: text,
            hmac: await this.checkHmac(response, parsed, bytes)};
  }

  async checkHmac(response, parsed, bytes) {
    const mac = response.headers.get('x-toto-hmac');
    if (mac === null) {
      return 'absent';
    }
    const session = parsed && parsed.session;
    if (!session || !this.key || session.session_id !== this.sessionId) {
      return 'no key';
    }
    const expected = await hmacSha1(
      this.key, joinBytes(encoder.encode(session.session_id), bytes));
    return expected === mac ? 'valid' : 'invalid';
  }
}

/* Run `steps` (name -> async function) in order; write the outcome into #results. */
async function runSteps(steps) {
  const results = {};
  for (const [name, step] of steps) {
    try {
      results[name] = await step();
    } catch (error) {
      results[name] = {exception: String(error)};
    }
  }
  const pre = document.getElementById('results');
  pre.textContent = JSON.stringify(results);
  pre.setAttribute('data-done', 'yes');
  return results;
}
