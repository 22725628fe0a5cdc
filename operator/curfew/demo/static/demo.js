/* Acme Notes page script: shows the session countdown and keeps the draft when the Curfew
   client says the session is about to end. It talks to Curfew only through DOM events. */
(function () {
  'use strict';
  var status = null;  // {idle, absolute}: the deadlines, ms since epoch, from the client
  var timer = null;

  function $(id) { return document.getElementById(id); }

  function clock(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    var r = s % 60;
    return Math.floor(s / 60) + ':' + (r < 10 ? '0' : '') + r;
  }

  // Each display counts down to a deadline, so it shows the same second whenever it is drawn;
  // the next draw is due when either of them changes, not 1000 ms after the last one, which
  // a late or drifting timer would turn into a skipped second.
  function tick() {
    clearTimeout(timer);
    if (!status || !$('countdown')) return;
    var now = Date.now();
    $('countdown').hidden = false;
    $('idle-left').textContent = clock(status.idle - now);
    $('absolute-left').textContent = clock(status.absolute - now);
    var next = 1000;
    [status.idle - now, status.absolute - now].forEach(function (left) {
      if (left > 0) next = Math.min(next, left - (Math.ceil(left / 1000) - 1) * 1000);
    });
    timer = setTimeout(tick, next + 15);
  }

  function note(text) {
    var el = $('session-note');
    if (el) el.textContent = text;
  }

  function draftBox() { return document.querySelector('textarea[data-draft-key]'); }

  function draftKey(box) { return 'acme-draft:' + box.getAttribute('data-draft-key'); }

  document.addEventListener('curfew:status', function (event) {
    status = { idle: event.detail.idleDeadline, absolute: event.detail.absoluteDeadline };
    tick();
  });

  document.addEventListener('curfew:expiring', function () {
    var box = draftBox();
    if (box) {
      localStorage.setItem(draftKey(box), box.value);
      $('draft-status').textContent = 'Draft kept on this device.';
    }
    note('(warning shown)');
  });

  document.addEventListener('curfew:extended', function () { note('(extended)'); });

  document.addEventListener('DOMContentLoaded', function () {
    var box = draftBox();
    if (!box) return;
    var kept = localStorage.getItem(draftKey(box));
    if (kept !== null && kept !== box.value) {
      box.value = kept;
      $('draft-status').textContent = 'Restored your unsaved draft.';
    }
    box.form.addEventListener('submit', function () { localStorage.removeItem(draftKey(box)); });
  });
})();
