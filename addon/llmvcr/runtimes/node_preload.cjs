// llm-vcr's Node preload, loaded with NODE_OPTIONS="--require <this file>" by `llm-vcr run` and
// `llm-vcr env` (see llmvcr/runtimes/node.py, which documents the versions).
//
// Node honours HTTPS_PROXY/HTTP_PROXY/NO_PROXY itself only with NODE_USE_ENV_PROXY=1 (or
// --use-env-proxy), and only from 24.0 for fetch and 24.5 for http(s)' default agents (22.21 in
// the 22 line for both). Where the running Node lacks one of them, this file supplies it:
// - fetch: undici's EnvHttpProxyAgent as the global dispatcher (the app's own undici, else the
//   one llm-vcr installed, named by LLM_VCR_UNDICI);
// - http/https: default agents that tunnel through the proxy with CONNECT (no package needed).
// Where the runtime already does it, this file does nothing. It never throws: a failure is one
// `llm-vcr:` line on stderr (once per process tree) and the app runs as it would without it.
'use strict';

(() => {
  if (globalThis.__llmVcrPreloaded) return;
  globalThis.__llmVcrPreloaded = true;
  const env = process.env;
  const [major, minor] = process.versions.node.split('.').map(Number);
  const atLeast = (a, b) => major > a || (major === a && minor >= b);
  const line22 = major === 22 && minor >= 21;
  const useEnvProxy = env.NODE_USE_ENV_PROXY === '1' || process.execArgv.includes('--use-env-proxy');
  const nativeFetch = useEnvProxy && (atLeast(24, 0) || line22);
  const nativeHttp = useEnvProxy && (atLeast(24, 5) || line22);
  const proxyFor = (secure) =>
    secure ? env.https_proxy || env.HTTPS_PROXY : env.http_proxy || env.HTTP_PROXY;
  if (!proxyFor(true) && !proxyFor(false)) return;

  // One line per process tree: `npm test` starts many Node processes with the same environment.
  const warn = (text) => {
    if (env.LLM_VCR_NODE_WARNED) return;
    env.LLM_VCR_NODE_WARNED = '1';
    try { process.stderr.write(`llm-vcr: ${text}\n`); } catch { /* no stderr: nothing to do */ }
  };

  if (!nativeFetch && typeof globalThis.fetch === 'function') {
    try {
      const undici = loadUndici();
      if (undici) {
        // Without undici's "EnvHttpProxyAgent is experimental" warning in every process.
        const emitWarning = process.emitWarning;
        process.emitWarning = function (warning, ...rest) {
          const code = (rest[0] && rest[0].code) || rest[1];
          if (code !== 'UNDICI-EHPA') emitWarning.call(process, warning, ...rest);
        };
        try {
          undici.setGlobalDispatcher(new undici.EnvHttpProxyAgent());
        } finally {
          process.emitWarning = emitWarning;
        }
      } else {
        warn(`Node ${process.versions.node}: fetch ignores HTTPS_PROXY and no undici (>= 6.14) ` +
             'was found, so fetch bypasses the proxy: `npm install undici` in the app, or use ' +
             'Node >= 24 (22.21+) with NODE_USE_ENV_PROXY=1');
      }
    } catch (e) {
      warn(`could not make Node's fetch use the proxy: ${e && e.message}`);
    }
  }
  if (!nativeHttp) {
    try {
      installAgents();
    } catch (e) {
      warn(`could not make Node's http(s) default agents use the proxy: ${e && e.message}`);
    }
  }

  function loadUndici() {
    const candidates = [];
    try { candidates.push(require.resolve('undici', { paths: [process.cwd()] })); } catch { }
    if (env.LLM_VCR_UNDICI) candidates.push(env.LLM_VCR_UNDICI);
    for (const candidate of candidates) {
      try {
        const undici = require(candidate);
        if (typeof undici.EnvHttpProxyAgent === 'function' &&
            typeof undici.setGlobalDispatcher === 'function') return undici;
      } catch { /* an unusable copy: try the next */ }
    }
    return null;
  }

  function noProxyRules() {
    return (env.no_proxy || env.NO_PROXY || '').split(/[\s,]+/).filter(Boolean)
      .map((entry) => entry.toLowerCase());
  }

  function bypass(host, port) {
    const name = String(host).toLowerCase().replace(/^\[|\]$/g, '');
    for (const rule of noProxyRules()) {
      if (rule === '*') return true;
      let ruleHost = rule;
      let rulePort = '';
      const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(rule);
      if (match) [, ruleHost, rulePort] = match;
      ruleHost = ruleHost.replace(/^\[|\]$/g, '').replace(/^\*?\./, '.');
      if (rulePort && String(port) !== rulePort) continue;
      if (name === ruleHost.replace(/^\./, '') || (ruleHost.startsWith('.') && name.endsWith(ruleHost))) return true;
      if (!ruleHost.startsWith('.') && name.endsWith(`.${ruleHost}`)) return true;
    }
    return false;
  }

  function installAgents() {
    const http = require('http');
    const https = require('https');
    const net = require('net');
    const tls = require('tls');

    function tunnel(proxyUrl, options, callback, secure) {
      const proxy = new URL(proxyUrl);
      const host = options.host || options.hostname || 'localhost';
      const port = options.port || (secure ? 443 : 80);
      const target = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
      let auth = '';
      if (proxy.username) {
        const pair = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
        auth = `Proxy-Authorization: Basic ${Buffer.from(pair).toString('base64')}\r\n`;
      }
      const socket = net.connect(Number(proxy.port) || 80, proxy.hostname.replace(/^\[|\]$/g, ''));
      let received = Buffer.alloc(0);
      const onError = (error) => callback(error);
      const onData = (chunk) => {
        received = Buffer.concat([received, chunk]);
        const end = received.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.removeListener('data', onData);
        socket.removeListener('error', onError);
        const status = Number(received.toString('latin1', 0, end).split(' ')[1]);
        if (status !== 200) {
          socket.destroy();
          callback(new Error(`the proxy answered CONNECT ${target} with status ${status}`));
          return;
        }
        if (!secure) {
          callback(null, socket);
          return;
        }
        const servername = options.servername || (net.isIP(host) ? undefined : host);
        callback(null, tls.connect({ ...options, host, port, socket, servername }));
      };
      socket.on('error', onError);
      socket.on('data', onData);
      socket.once('connect', () => {
        socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`);
      });
    }

    const proxied = (Base, secure) => class extends Base {
      createConnection(options, callback) {
        const proxyUrl = proxyFor(secure);
        const host = options.host || options.hostname || 'localhost';
        if (!proxyUrl || options.socketPath || bypass(host, options.port)) {
          return super.createConnection(options, callback);
        }
        tunnel(proxyUrl, options, callback, secure);
        return undefined;
      }
    };
    http.globalAgent = new (proxied(http.Agent, false))({ ...http.globalAgent.options });
    https.globalAgent = new (proxied(https.Agent, true))({ ...https.globalAgent.options });
  }
})();
