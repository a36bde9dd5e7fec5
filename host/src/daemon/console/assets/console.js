// The console's only script: deadline countdowns, live refresh over
// Server-Sent Events, and the incident page's keyboard shortcuts. Pages work
// without it (forms post and redirect); it only keeps them current.
(function () {
  'use strict';

  function span(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + 'd ' + h + 'h';
    if (h > 0) return h + 'h ' + m + 'm';
    return m + 'm ' + (s % 60) + 's';
  }

  // Every deadline counts down to its time; past it, it turns red.
  function tick() {
    var now = Date.now();
    document.querySelectorAll('time[data-due]').forEach(function (el) {
      var left = Number(el.dataset.due) - now;
      el.textContent = left >= 0 ? 'in ' + span(left) : span(left) + ' overdue';
      el.classList.toggle('overdue', left < 0);
    });
    document.querySelectorAll('time[data-since]').forEach(function (el) {
      el.textContent = span(now - Number(el.dataset.since)) + ' ago';
    });
  }

  var live = document.getElementById('live');
  var refreshing = false, again = false, timer = null;

  // Re-reads this page and swaps in its live part; typed text outside it stays.
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) {
        if (r.redirected && r.url.indexOf('/console/login') >= 0) { location.href = r.url; return null; }
        return r.text();
      })
      .then(function (text) {
        if (text === null) return;
        var fresh = new DOMParser().parseFromString(text, 'text/html').getElementById('live');
        if (fresh) {
          live.replaceChildren.apply(live, Array.from(fresh.childNodes));
          document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
          tick();
        }
      })
      .catch(function () { again = true; })
      .finally(function () {
        refreshing = false;
        if (again) { again = false; schedule(); }
      });
  }

  // Bursts of changes (a trigger journals several events) cost one refresh.
  function schedule() {
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, 150);
  }

  if (live && live.dataset.watch && window.EventSource) {
    var watch = live.dataset.watch;
    var es = new EventSource('/console/events');
    es.addEventListener('ready', function () { document.body.dataset.live = 'on'; });
    es.addEventListener('error', function () { document.body.dataset.live = 'off'; });
    es.addEventListener('change', function (e) {
      var c = JSON.parse(e.data);
      if (watch === '*' || c.incident === watch) schedule();
    });
    es.addEventListener('reload', schedule);
  }

  // a: acknowledge; u: write an update. Not while typing.
  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    if (e.key === 'a') {
      var b = document.getElementById('ack-button');
      if (b) { e.preventDefault(); b.click(); }
    } else if (e.key === 'u') {
      var n = document.getElementById('update-note');
      if (n) { e.preventDefault(); n.focus(); }
    }
  });

  tick();
  setInterval(tick, 1000);
})();
