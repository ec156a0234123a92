// rss-monitor console: the project's own few lines. Every page works without them; they add
// times in the viewer's zone and words, the live inbox (server-sent events), and confirmations.
"use strict";
(function () {
  function words(seconds) {
    var ahead = seconds < 0, d = Math.abs(seconds), units = [[31536000, "y"], [86400, "d"], [3600, "h"], [60, "min"]];
    if (d < 45) { return ahead ? "in a moment" : "just now"; }
    for (var i = 0; i < units.length; i++) {
      if (d >= units[i][0]) {
        var n = Math.floor(d / units[i][0]);
        return ahead ? "in " + n + " " + units[i][1] : n + " " + units[i][1] + " ago";
      }
    }
    return "just now";
  }
  // dateStyle cannot be combined with timeZoneName: the fields one by one
  var exact = new Intl.DateTimeFormat(undefined, {year: "numeric", month: "short", day: "numeric", hour: "2-digit",
                                                  minute: "2-digit", second: "2-digit", timeZoneName: "short"});
  function times(root) {
    var now = Date.now();
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var at = Date.parse(t.getAttribute("datetime"));
      if (isNaN(at)) { return; }
      t.textContent = words((now - at) / 1000);
      t.title = exact.format(new Date(at));
    });
  }
  function live() {
    var box = document.getElementById("inbox");
    if (!box || !box.dataset.live || !window.EventSource) { return; }
    var source = new EventSource(box.dataset.live);
    source.addEventListener("alert", function (e) {
      var msg = JSON.parse(e.data);
      if (document.getElementById("story-" + msg.id)) { return; }
      var empty = document.getElementById("empty");
      if (empty) { empty.remove(); }
      // The row is the server's own rendering: every feed text in it is escaped there.
      var holder = document.createElement("div");
      holder.innerHTML = msg.html;
      var row = holder.firstElementChild;
      if (!row) { return; }
      row.classList.add("new");
      times(row);
      box.insertBefore(row, box.firstChild);
    });
  }
  document.addEventListener("submit", function (e) {
    var button = e.submitter;
    var question = button && button.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { e.preventDefault(); }
  });
  document.addEventListener("input", function (e) {
    // a rule file's "try it" form carries the text being edited, not the text as loaded
    if (e.target.name === "text" && e.target.form && e.target.form.classList.contains("rule-file")) {
      document.querySelectorAll("input[data-mirror=text]").forEach(function (m) { m.value = e.target.value; });
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    times(document);
    setInterval(function () { times(document); }, 30000);
    live();
  });
})();
