// nmt web UI: select-all, live updates of the machines table and of a machine's page,
// small conveniences. Everything works without this script except the live updates.
"use strict";

(function () {
  // Filters: changing the group select applies it at once.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });

  // Live: nmtd says "commit" on /events whenever events were appended. `follow(fn)` runs
  // fn on each, one at a time (a commit during a run runs it once more afterwards).
  var live = document.getElementById("live");
  function follow(fn) {
    if (!window.EventSource) return;
    var busy = false, again = false;
    function run() {
      if (busy) { again = true; return; }
      busy = true;
      Promise.resolve().then(fn).catch(function () {}).then(function () {
        busy = false;
        if (again) { again = false; run(); }
      });
    }
    var es = null;
    function connect() {
      es = new EventSource("/events");
      es.addEventListener("open", function () { if (live) live.classList.add("on"); });
      es.addEventListener("error", function () { if (live) live.classList.remove("on"); });
      es.addEventListener("commit", run);
    }
    connect();
    // A page left for another (kept in the back/forward cache) lets its stream go: the
    // browser allows a site only a few connections, and streams of pages not shown would
    // hold them all. Shown again, it follows again, from what changed meanwhile.
    window.addEventListener("pagehide", function () {
      if (es) { es.close(); es = null; }
      if (live) live.classList.remove("on");
    });
    window.addEventListener("pageshow", function (e) {
      if (e.persisted && !es) { connect(); run(); }
    });
  }
  function fetchHtml(url) {
    return fetch(url, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var t = document.createElement("template");
        t.innerHTML = html.trim();
        return t.content;
      });
  }

  // A machine's page: put the fresh parts (summary, facts, timeline, files) in place by
  // id, keep which files were open, and mark timeline entries that are new.
  var machine = document.getElementById("machine");
  if (machine) {
    machine.addEventListener("input", function (e) {
      var keep = e.target.closest && e.target.closest("[data-keep-while-edited]");
      if (keep) keep.setAttribute("data-edited", "");
    });
    follow(function () {
      var seen = {};
      document.querySelectorAll("#timeline li[data-seq]").forEach(function (li) {
        seen[li.getAttribute("data-seq")] = true;
      });
      var open = {};
      document.querySelectorAll("#files details").forEach(function (d) {
        open[d.querySelector("summary").textContent] = d.open;
      });
      // Boots someone opened stay open.
      var opened = {};
      document.querySelectorAll("#timeline details[data-seq]").forEach(function (d) {
        if (d.open) opened[d.getAttribute("data-seq")] = true;
      });
      return fetchHtml(machine.getAttribute("data-src")).then(function (fresh) {
        fresh.querySelectorAll("[data-live][id]").forEach(function (el) {
          var cur = document.getElementById(el.id);
          if (!cur) return;
          // A form someone is filling in stays as it is.
          if (cur.hasAttribute("data-keep-while-edited") &&
              (cur.hasAttribute("data-edited") || cur.contains(document.activeElement))) return;
          cur.parentNode.replaceChild(el, cur);
        });
        document.querySelectorAll("#timeline li[data-seq]").forEach(function (li) {
          if (!seen[li.getAttribute("data-seq")]) li.classList.add("new");
        });
        document.querySelectorAll("#files details").forEach(function (d) {
          var k = d.querySelector("summary").textContent;
          if (k in open) d.open = open[k];
        });
        document.querySelectorAll("#timeline details[data-seq]").forEach(function (d) {
          if (opened[d.getAttribute("data-seq")]) d.open = true;
        });
      });
    });
    return;
  }

  // The schedules page: put the fresh list in place (a run made, a check, a pause).
  var schedules = document.getElementById("schedules");
  if (schedules) {
    var src = schedules.getAttribute("data-src");
    follow(function () {
      return fetchHtml(src).then(function (fresh) {
        var el = fresh.querySelector("#schedules");
        var cur = document.getElementById("schedules");
        if (el && cur) cur.parentNode.replaceChild(el, cur);
      });
    });
    return;
  }

  var rows = document.getElementById("rows");
  if (!rows) return;
  var all = document.getElementById("all");
  var nsel = document.getElementById("nsel");

  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll("#rows input[name=mac]"));
  }
  function count() {
    var n = boxes().filter(function (b) { return b.checked; }).length;
    if (nsel) nsel.textContent = String(n);
    if (all) {
      var bs = boxes();
      all.checked = bs.length > 0 && n === bs.length;
      all.indeterminate = n > 0 && n < bs.length;
    }
    document.querySelectorAll("#rows tr[data-mac]").forEach(function (tr) {
      var b = tr.querySelector("input[name=mac]");
      tr.classList.toggle("checked", !!(b && b.checked));
    });
  }
  if (all) {
    all.addEventListener("change", function () {
      boxes().forEach(function (b) { b.checked = all.checked; });
      count();
    });
  }
  // Shift-click ticks a run of rows, as in a file manager.
  var last = null;
  document.addEventListener("click", function (e) {
    var b = e.target;
    if (!(b instanceof HTMLInputElement) || b.name !== "mac") return;
    var bs = boxes();
    if (e.shiftKey && last !== null) {
      var a = bs.indexOf(last), z = bs.indexOf(b);
      if (a >= 0 && z >= 0) {
        for (var i = Math.min(a, z); i <= Math.max(a, z); i++) bs[i].checked = b.checked;
      }
    }
    last = b;
    count();
  });
  document.addEventListener("change", function (e) {
    if (e.target instanceof HTMLInputElement && e.target.name === "mac") count();
  });

  // Live: fetch this page's rows again, sending the digests of the rows shown: a row that
  // did not change comes back as an empty placeholder and the row shown stays in place
  // (ticked or not). New machines are marked; the counts and the pager follow.
  function refresh(full) {
    var ticked = {};
    var before = {};
    boxes().forEach(function (b) { before[b.value] = true; if (b.checked) ticked[b.value] = true; });
    var shown = {};
    var digests = [];
    document.querySelectorAll("#rows tr[data-h]").forEach(function (tr) {
      shown[tr.getAttribute("data-h")] = tr;
      digests.push(tr.getAttribute("data-h"));
    });
    var q = location.search ? location.search + "&" : "?";
    var url = "/machines/rows" + (full ? location.search : q + "have=" + digests.join("."));
    return fetchHtml(url).then(function (content) {
      var fresh = content.querySelector("tbody");
      if (!fresh) return;
      var holes = fresh.querySelectorAll("tr[data-same]");
      for (var i = 0; i < holes.length; i++) {
        if (!shown[holes[i].getAttribute("data-same")]) return full ? null : refresh(true);
      }
      holes.forEach(function (hole) {
        var tr = shown[hole.getAttribute("data-same")];
        tr.classList.remove("new");
        hole.parentNode.replaceChild(tr, hole);
      });
      fresh.querySelectorAll("tr[data-mac]").forEach(function (tr) {
        var mac = tr.getAttribute("data-mac");
        var b = tr.querySelector("input[name=mac]");
        if (b && ticked[mac]) b.checked = true;
        if (!before[mac]) tr.classList.add("new");
      });
      var cur = document.getElementById("rows");
      cur.parentNode.replaceChild(fresh, cur);
      var put = function (id, attr) {
        var el = document.getElementById(id);
        if (el) el.textContent = fresh.getAttribute(attr);
      };
      put("total", "data-total");
      put("unknowns", "data-unknown");
      put("matching", "data-matching");
      put("from", "data-from");
      put("to", "data-to");
      put("pages", "data-pages");
      var page = Number(fresh.getAttribute("data-page"));
      var pages = Number(fresh.getAttribute("data-pages"));
      var next = document.getElementById("next");
      var prev = document.getElementById("prev");
      if (next) next.hidden = page >= pages;
      if (prev) prev.hidden = page <= 1;
      count();
    });
  }
  follow(function () { return refresh(false); });
  count();
})();
