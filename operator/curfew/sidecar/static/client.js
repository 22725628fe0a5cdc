/*
 * Curfew browser client, served by the sidecar at /.curfew/client.js.
 *
 * Warns before the session expires, lets the user stay signed in, and on expiry sends the user
 * to the login page with the current URL preserved. Dependency-free and CSP-friendly: no inline
 * script, no eval, no style attributes (its looks come from /.curfew/client.css).
 *
 *   <script src="/.curfew/client.js" defer data-sign-out-url="/logout"></script>
 *
 * Events on document: curfew:status, curfew:expiring (save drafts now), curfew:extended,
 * curfew:expired, curfew:signout (cancelable). API: window.curfew.keepalive(), .signOut(),
 * .refresh(). Tabs of one session agree through BroadcastChannel (or storage events).
 */
(function () {
  'use strict';
  if (window.curfew) return;

  var BASE = '/.curfew/';
  var MAX_POLL_S = 60;   // re-check at least this often: other requests may extend the session
  var WATCH_POLL_S = 5;  // while warning: notice activity in other tabs or requests
  var RETRY_S = 5;       // after a failed poll
  var SYNC_KEY = 'curfew:sync';

  var script = document.currentScript;
  var data = (script && script.dataset) || {};
  var signOutUrl = data.signOutUrl || null;

  var config = null;      // from /.curfew/client.json: loginPrefix (loginURL up to return_to=)
  var known = null;       // {idleDeadline, absoluteDeadline, lead, at}: ms since epoch
  var signedIn = false;
  var leaving = false;
  var pollTimer = null;
  var tickTimer = null;
  var warnedFor = null;   // the deadline a curfew:expiring event was already sent for
  var dismissed = null;   // the absolute deadline whose warning the user acknowledged
  var lastAnnounced = null;
  var ui = null;
  var returnFocus = null;

  function emit(name, detail, cancelable) {
    var event = new CustomEvent('curfew:' + name, { detail: detail, cancelable: !!cancelable });
    return document.dispatchEvent(event);
  }

  // --- talking to the sidecar ----------------------------------------------------------------

  function call(method, path) {
    var headers = { Accept: 'application/json' };
    // The sidecar extends a session only for a request a page on another origin cannot send.
    if (method === 'POST') headers['Curfew-Keepalive'] = '1';
    return fetch(BASE + path, {
      method: method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: headers
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        return { status: response.status, body: body };
      });
    });
  }

  function loadConfig() {
    return call('GET', 'client.json').then(function (r) {
      config = r.status === 200 ? r.body : {};
    }, function () { config = {}; });
  }

  function poll() { return handle(call('GET', 'session'), false); }

  function keepalive() { return handle(call('POST', 'keepalive'), true); }

  function handle(pending, extended) {
    clearTimeout(pollTimer);
    return pending.then(function (r) {
      if (r.status === 200) {
        signedIn = true;
        adopt(fromBody(r.body), true);
        if (extended) emit('extended', statusDetail());
      } else if (r.status === 401 && r.body.error === 'session_expired') {
        expire(r.body.reason || 'idle');
      } else if (r.status === 401) {
        // No session: not signed in. Having had one, it ended elsewhere (sign-out in another tab).
        if (signedIn) expire('signout');
      } else {
        later(RETRY_S);
      }
    }, function () { later(RETRY_S); });
  }

  function fromBody(body) {
    var now = Date.now();
    function left(name) {  // ms: the sidecar's exact figure, else its whole seconds
      var ms = body[name + 'RemainingMilliseconds'];
      return typeof ms === 'number' ? ms : body[name + 'RemainingSeconds'] * 1000;
    }
    return {
      idleDeadline: now + left('idle'),
      absoluteDeadline: now + left('absolute'),
      lead: typeof body.warningLeadSeconds === 'number' ? body.warningLeadSeconds : null,
      at: now
    };
  }

  // --- what we know, and when to look again --------------------------------------------------

  function adopt(status, share) {
    if (known && status.at < known.at) return;
    if (known) {
      // Each status puts a deadline a little early (the reply's time on the way; whole seconds
      // from an older sidecar). Two less than a second apart are the same deadline: keep the
      // later, truer one, so the countdown never jumps ahead or back on a poll.
      status.idleDeadline = sameDeadline(status.idleDeadline, known.idleDeadline);
      status.absoluteDeadline = sameDeadline(status.absoluteDeadline, known.absoluteDeadline);
    }
    known = status;
    if (share) broadcast({ type: 'status', status: status });
    emit('status', statusDetail());
    schedule();
  }

  function sameDeadline(fresh, before) {
    return fresh < before && before - fresh < 1000 ? before : fresh;
  }

  function remaining() {
    var now = Date.now();
    var idle = (known.idleDeadline - now) / 1000;
    var absolute = (known.absoluteDeadline - now) / 1000;
    return {
      seconds: Math.min(idle, absolute),
      reason: absolute <= idle ? 'absolute' : 'idle',
      idle: idle,
      absolute: absolute
    };
  }

  function statusDetail() {
    var left = remaining();
    return {
      idleRemainingSeconds: Math.max(0, Math.floor(left.idle)),
      absoluteRemainingSeconds: Math.max(0, Math.floor(left.absolute)),
      idleDeadline: known.idleDeadline,
      absoluteDeadline: known.absoluteDeadline,
      warningLeadSeconds: known.lead
    };
  }

  function later(seconds) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, Math.max(0.25, seconds) * 1000);
  }

  function schedule() {
    var left = remaining();
    var lead = known.lead || 0;
    if (left.seconds <= 0) {
      // The floor of the server's figure may put us just before the deadline: look again soon.
      later(0.5);
    } else if (known.lead !== null && left.seconds <= lead) {
      later(Math.min(WATCH_POLL_S, left.seconds + 0.3));
    } else {
      // Poll exactly when the warning is due: the server, not this tab's clock, decides.
      later(Math.min(MAX_POLL_S, left.seconds - lead));
    }
    render();
  }

  // --- the dialog ----------------------------------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function ensureStylesheet() {
    if (document.querySelector('link[data-curfew]')) return;
    var link = el('link');
    link.rel = 'stylesheet';
    link.href = BASE + 'client.css';
    link.setAttribute('data-curfew', '');
    document.head.appendChild(link);
  }

  function build() {
    ensureStylesheet();
    var dialog = el('dialog', 'curfew-dialog');
    dialog.setAttribute('role', 'alertdialog');
    dialog.setAttribute('aria-modal', 'true');
    dialog.setAttribute('aria-labelledby', 'curfew-title');
    dialog.setAttribute('aria-describedby', 'curfew-message');
    var title = el('h2', 'curfew-title', 'Your session is about to end');
    title.id = 'curfew-title';
    var message = el('p', 'curfew-message');
    message.id = 'curfew-message';
    var lead = el('span', 'curfew-lead');
    var time = el('span', 'curfew-time');
    time.setAttribute('aria-hidden', 'true');  // the live region below announces calmly
    var tail = el('span', 'curfew-tail');
    message.appendChild(lead);
    message.appendChild(time);
    message.appendChild(tail);
    var live = el('p', 'curfew-live');
    live.setAttribute('aria-live', 'polite');
    live.setAttribute('aria-atomic', 'true');
    var actions = el('div', 'curfew-actions');
    var stay = el('button', 'curfew-stay', 'Stay signed in');
    stay.type = 'button';
    var leave = el('button', 'curfew-signout', 'Sign out');
    leave.type = 'button';
    actions.appendChild(stay);
    actions.appendChild(leave);
    dialog.appendChild(title);
    dialog.appendChild(message);
    dialog.appendChild(live);
    dialog.appendChild(actions);
    stay.addEventListener('click', function () {
      if (ui.reason === 'absolute') hide(); else keepalive();
    });
    leave.addEventListener('click', signOut);
    // Escape proves someone is there: treat it as "Stay signed in", never as a silent close.
    dialog.addEventListener('cancel', function (event) {
      event.preventDefault();
      stay.click();
    });
    document.body.appendChild(dialog);
    return { dialog: dialog, title: title, lead: lead, time: time, tail: tail, live: live,
             stay: stay, open: false, reason: null };
  }

  // The next moment a countdown to any of ``deadlines`` (ms since epoch, shown rounded up to
  // whole seconds) changes, as a delay in ms. Ticking then, rather than every 1000 ms from
  // whenever we started, keeps a late or drifting timer from ever skipping a second.
  function untilNextSecond(deadlines) {
    var now = Date.now();
    var soonest = 1000;
    deadlines.forEach(function (deadline) {
      var left = deadline - now;
      if (left > 0) soonest = Math.min(soonest, left - (Math.ceil(left / 1000) - 1) * 1000);
    });
    return soonest + 15;  // just past the boundary: a timer may fire a little early
  }

  function clock(seconds) {
    var s = Math.max(0, Math.ceil(seconds));
    var m = Math.floor(s / 60);
    var r = s % 60;
    return m + ':' + (r < 10 ? '0' : '') + r;
  }

  function spoken(seconds) {
    var s = Math.max(0, Math.ceil(seconds));
    var m = Math.floor(s / 60);
    var r = s % 60;
    var parts = [];
    if (m) parts.push(m + (m === 1 ? ' minute' : ' minutes'));
    if (r || !m) parts.push(r + (r === 1 ? ' second' : ' seconds'));
    return parts.join(' ');
  }

  function render() {
    if (!known || leaving) return;
    var left = remaining();
    var acknowledged = left.reason === 'absolute' && dismissed !== null &&
      Math.abs(known.absoluteDeadline - dismissed) < 2000;
    var warn = known.lead !== null && left.seconds <= known.lead && !acknowledged;
    if (!warn) { hide(); return; }
    if (!ui) ui = build();
    if (ui.reason !== left.reason) {
      ui.reason = left.reason;
      var absolute = left.reason === 'absolute';
      ui.title.textContent = absolute ? 'Your session will end soon' : 'Are you still there?';
      ui.lead.textContent = absolute ? 'Your session ends in ' : 'You will be signed out in ';
      ui.tail.textContent = absolute ? '. It cannot be extended: save your work.' : '.';
      ui.stay.textContent = absolute ? 'OK' : 'Stay signed in';
    }
    ui.time.textContent = clock(left.seconds);
    var whole = Math.max(0, Math.ceil(left.seconds));
    if (!ui.open || (whole !== lastAnnounced && (whole % 30 === 0 || whole === 10))) {
      lastAnnounced = whole;
      ui.live.textContent = (left.reason === 'absolute' ? 'Session ends in ' : 'Signing out in ')
        + spoken(left.seconds);
    }
    show(left);
  }

  function show(left) {
    if (!ui.open) {
      ui.open = true;
      returnFocus = document.activeElement;
      if (typeof ui.dialog.showModal === 'function') ui.dialog.showModal();
      else ui.dialog.setAttribute('open', '');
      ui.stay.focus();
      tick();
    }
    var deadline = left.reason === 'absolute' ? known.absoluteDeadline : known.idleDeadline;
    if (warnedFor !== deadline) {
      warnedFor = deadline;
      emit('expiring', { secondsRemaining: Math.max(0, Math.floor(left.seconds)),
                         reason: left.reason });
    }
  }

  function tick() {
    clearTimeout(tickTimer);
    tickTimer = setTimeout(function () {
      render();
      if (ui && ui.open) tick();
    }, untilNextSecond([known.idleDeadline, known.absoluteDeadline]));
  }

  function hide() {
    if (!ui || !ui.open) return;
    ui.open = false;
    clearTimeout(tickTimer);
    if (typeof ui.dialog.close === 'function') ui.dialog.close();
    else ui.dialog.removeAttribute('open');
    if (ui.reason === 'absolute') dismissed = known.absoluteDeadline;
    ui.reason = null;
    lastAnnounced = null;
    if (returnFocus && typeof returnFocus.focus === 'function') returnFocus.focus();
    returnFocus = null;
  }

  // --- leaving -------------------------------------------------------------------------------

  // The value as application/x-www-form-urlencoded: the browser's own serializer, which the
  // sidecar's redirect reproduces byte for byte (curfew.sidecar.policy.form_encode).
  function formEncode(text) {
    return new URLSearchParams([['', text]]).toString().slice(1);
  }

  // Where to come back to, as the sidecar takes it from a request: path and query (a server
  // never sees the fragment), and "/" for a path that could read as another host.
  function returnPath() {
    var here = location.pathname + location.search;
    return here.charAt(0) === '/' && here.slice(0, 2) !== '//' ? here : '/';
  }

  // The same bytes as the sidecar's own login redirect for this page (one encoding, one
  // order: loginURL's query, returnToParameter, curfew_reason).
  function loginUrl(reason) {
    if (!config || !config.loginPrefix) return location.href;  // the app's own sign-in takes over
    return config.loginPrefix + formEncode(returnPath()) + '&curfew_reason=' + formEncode(reason);
  }

  function expire(reason) {
    if (leaving) return;
    leaving = true;
    clearTimeout(pollTimer);
    clearTimeout(tickTimer);
    var url = loginUrl(reason);
    emit('expired', { reason: reason, url: url });
    broadcast({ type: 'expired' });
    location.assign(url);
  }

  function signOut() {
    if (leaving || !emit('signout', {}, true)) return;
    leaving = true;
    clearTimeout(pollTimer);
    broadcast({ type: 'signout' });
    location.assign(signOutUrl || loginUrl('signout'));
  }

  // --- tabs of one session -------------------------------------------------------------------

  var channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('curfew') : null;

  function broadcast(message) {
    if (channel) { channel.postMessage(message); return; }
    try {
      message.nonce = Math.random();
      localStorage.setItem(SYNC_KEY, JSON.stringify(message));
    } catch (e) { /* storage unavailable: each tab still polls on its own */ }
  }

  function receive(message) {
    if (!message || leaving) return;
    if (message.type === 'status' && message.status) {
      signedIn = true;
      adopt(message.status, false);
    } else if (message.type === 'expired' || message.type === 'signout') {
      // Confirm with the server rather than trusting another tab: it answers for this tab too.
      setTimeout(poll, message.type === 'signout' ? 300 : 0);
    }
  }

  if (channel) {
    channel.onmessage = function (event) { receive(event.data); };
  } else {
    window.addEventListener('storage', function (event) {
      if (event.key !== SYNC_KEY || !event.newValue) return;
      try { receive(JSON.parse(event.newValue)); } catch (e) { /* not ours */ }
    });
  }

  // Background tabs have their timers throttled: look again as soon as one is shown.
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible' && !leaving) poll();
  });

  window.curfew = Object.freeze({ keepalive: keepalive, signOut: signOut, refresh: poll });

  function start() { loadConfig().then(poll); }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
