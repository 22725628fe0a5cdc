/* Acme Notes page script: shows the session countdown and keeps the draft when the Curfew
   client says the session is about to end. It talks to Curfew only through DOM events. */
(function () {
  'use strict';
  var status = null;  // {idle, absolute, at}
  var timer = null;

  function $(id) { return document.getElementById(id); }

  function clock(seconds) {
    var s = Math.max(0, Math.ceil(seconds));
    var r = s % 60;
    return Math.floor(s / 60) + ':' + (r < 10 ? '0' : '') + r;
  }

  function tick() {
    if (!status || !$('countdown')) return;
    var gone = (Date.now() - status.at) / 1000;
    $('countdown').hidden = false;
    $('idle-left').textContent = clock(status.idle - gone);
    $('absolute-left').textContent = clock(status.absolute - gone);
  }

  function note(text) {
    var el = $('session-note');
    if (el) el.textContent = text;
  }

  function draftBox() { return document.querySelector('textarea[data-draft-key]'); }

  function draftKey(box) { return 'acme-draft:' + box.getAttribute('data-draft-key'); }

  document.addEventListener('curfew:status', function (event) {
    status = { idle: event.detail.idleRemainingSeconds,
               absolute: event.detail.absoluteRemainingSeconds, at: Date.now() };
    tick();
    if (!timer) timer = setInterval(tick, 1000);
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
