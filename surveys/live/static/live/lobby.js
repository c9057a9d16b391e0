// The booking page: times in the participant's own time zone, and the lobby that goes to the
// room by itself once it has opened. Without the script the times show in UTC, and the lobby
// has a link to open the room.
(function () {
  "use strict";
  var lang = document.documentElement.lang || undefined;
  var shown = false;
  document.querySelectorAll("time.local-time").forEach(function (node) {
    var start = new Date(node.getAttribute("datetime"));
    var end = node.dataset.end ? new Date(node.dataset.end) : null;
    if (isNaN(start)) { return; }
    try {
      var day = new Intl.DateTimeFormat(lang, {weekday: "long", day: "numeric", month: "long", year: "numeric"}).format(start);
      var hours = new Intl.DateTimeFormat(lang, {hour: "2-digit", minute: "2-digit"});
      var zone = new Intl.DateTimeFormat(lang, {timeZoneName: "short"}).formatToParts(start)
        .filter(function (p) { return p.type === "timeZoneName"; }).map(function (p) { return p.value; }).join("");
      node.textContent = day + ", " + hours.format(start) + (end ? "–" + hours.format(end) : "") + " " + zone;
      shown = true;
    } catch (e) { /* the server's UTC text stays */ }
  });
  var note = document.querySelector(".local-zone");
  if (note && shown) { note.hidden = false; }
  var lobby = document.getElementById("lobby");
  if (lobby) {
    var seconds = parseInt(lobby.dataset.refresh, 10) || 10;
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }
})();
